// An app's h2c request whose head says content-length: 0 but leaves its stream open goes
// upstream only once the stream has ended (src/outbound/empty-body-hold.ts). It was forwarded at
// once: an HTTP/1.1 app behind the far sidecar read `Content-Length: 0` as the whole request and
// acted on it, and the DATA that came next made it malformed (RFC 9113 §8.1.1): the app's stream
// was reset, the far app had acted with nobody to answer. Real sockets: a Node h2c client, the
// outbound and inbound over mutual TLS, a raw HTTP/1.1 app (or an h2c one, for the trailers);
// both HTTP/2 codecs.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { startPairToApp } from '../helpers/pair-to-app.js';
import { inboundWithRecordingApp } from '../helpers/recording-h2-app.js';
import { startOutbound } from '../helpers/outbound-fixture.js';
import { closer } from '../helpers/raw-http.js';
import { SERVER_ID } from '../helpers/inbound-fixture.js';

/** A raw HTTP/1.1 app: records each request line it gets and answers 200 `ok` at once. */
async function startLineApp(lines: string[]) {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('latin1').split('\r\n')) if (/^[A-Z]+ \/\S* HTTP\/1\.1$/.test(line)) lines.push(line);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: closer(server) };
}

interface Outcome {
  status: number;
  rstCode: number | undefined;
}

/** One request on `client`; `act` writes its body (or not) and ends or leaves it. */
function call(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, act: (req: http2.ClientHttp2Stream) => void, options: http2.ClientSessionRequestOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = client.request(headers, options);
    let status = 0;
    req.on('response', (head) => (status = Number(head[':status'])));
    req.on('error', () => {});
    req.resume();
    req.on('close', () => resolve({ status, rstCode: req.rstCode }));
    act(req);
  });
}

const EMPTY_POST = { ':method': 'POST', ':authority': 'orders', 'content-length': '0' };

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: content-length 0 without END_STREAM waits for the end`, async (t) => {
    const lines: string[] = [];
    const app = await startLineApp(lines);
    const { outbound } = await startPairToApp(t, app.port, codec);
    t.teardown(() => app.close());
    const client = http2.connect(`http://127.0.0.1:${outbound.port}`);
    t.teardown(() => client.destroy());

    // the head first; DATA only once it had all the time it needs to go on (a request sent after
    // it on the same connection has been answered by the app through the pair)
    let held: http2.ClientHttp2Stream | undefined;
    const malformed = call(client, { ...EMPTY_POST, ':path': '/malformed' }, (req) => (held = req));
    const between = await call(client, { ':method': 'GET', ':authority': 'orders', ':path': '/between' }, (req) => req.end());
    t.equal(between.status, 200);
    held?.end('late');
    const outcome = await malformed;
    t.equal(outcome.rstCode, http2.constants.NGHTTP2_PROTOCOL_ERROR, 'DATA after content-length 0: the stream is reset');
    t.equal(outcome.status, 0, 'with no answer');

    const ended = await call(client, { ...EMPTY_POST, ':path': '/ended-later' }, (req) => {
      client.ping(() => req.end());
    });
    t.equal(ended.status, 200, 'the same request ended cleanly later is answered');
    t.same(lines, ['GET /between HTTP/1.1', 'POST /ended-later HTTP/1.1'], 'the app never saw the malformed request');
  });

  t.test(`codec ${codec}: content-length 0, then only trailers: they go on`, async (t) => {
    const { fx, seen } = await inboundWithRecordingApp(t, codec);
    const outbound = await startOutbound(fx.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${fx.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => outbound.close());
    const client = http2.connect(`http://127.0.0.1:${outbound.port}`);
    t.teardown(() => client.destroy());
    const outcome = await call(
      client,
      { ...EMPTY_POST, ':path': '/with-trailers' },
      (req) => {
        req.on('wantTrailers', () => req.sendTrailers({ 'x-checksum': 'abc' }));
        client.ping(() => req.end());
      },
      { waitForTrailers: true },
    );
    t.equal(outcome.status, 200);
    t.equal(seen.length, 1);
    t.equal(seen[0]?.body, '', 'the body empty');
    t.equal(seen[0]?.trailers?.['x-checksum'], 'abc', 'the trailers relayed');
  });
}

// the hold had no bound: an app that never ended such a request held its stream, its record,
// the connection's idle close and the drain until it closed its connection. Now bounded as an
// upload that stops: the app's own deadline (504), and the upstream's idleTimeout (408)
t.test('a held request the app never ends: its own deadline (504) or the idle timeout (408), recorded', async (t) => {
  const { makePki, startUpstream } = await import('../helpers/outbound-fixture.js');
  const pki = await makePki();
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 60_000, idleTimeoutMs: 400 }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const client = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => client.destroy());
  const held = { ...EMPTY_POST, ':authority': 'payments' };
  const started = performance.now();
  const [deadline, idle] = await Promise.all([
    call(client, { ...held, ':path': '/deadline', 'x-request-timeout': '150ms' }, () => undefined),
    call(client, { ...held, ':path': '/idle' }, () => undefined),
  ]);
  t.equal(deadline.status, 504, "the app's own deadline: 504");
  t.equal(idle.status, 408, 'quiet for the idle timeout: 408');
  t.ok(performance.now() - started < 5_000, 'both within seconds');
  t.equal(upstream.requests, 0, 'nothing went upstream');
  await fx.observer.waitForRequests(2);
  t.same(fx.observer.requests.map((r) => [r.path, r.status]).sort(), [['/deadline', 504], ['/idle', 408]], 'both recorded');
  const drained = performance.now();
  await fx.outbound.drain(2_000);
  t.ok(performance.now() - drained < 1_000, 'nothing left for the drain to wait on');
});

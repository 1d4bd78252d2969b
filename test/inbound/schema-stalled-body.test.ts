// A caller's JSON body that the inbound reads for an enforcing OpenAPI check and that stops
// coming is the caller's stall, not the app's: it is answered 408 request_timeout at the
// route's idle timeout (as the outbound answers its app's stalled body, and as Envoy answers a
// stream idle timeout), the app never sees the request, and the exchange is counted with
// that code. It was 504 upstream_timeout, which blamed an app nobody had asked. A request
// whose app stops answering keeps its 504. Both HTTP/2 codecs of the inbound's server.

import t from 'tap';
import tls from 'node:tls';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const SPEC = resolve('config/orders.openapi.yaml');
const IDLE_MS = 400;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a schema-read body that stops coming is 408 request_timeout`, async (t) => {
    let appSaw = 0;
    const fx = await startInbound({
      codec,
      idleTimeoutMs: IDLE_MS,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          appSaw += 1;
          req.resume();
          req.on('end', () => res.end('ok'));
        },
      },
    });
    t.teardown(() => fx.close());
    fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 1024 }));
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());

    const started = Date.now();
    const stream = caller.request({ ':method': 'POST', ':path': '/orders', 'content-type': 'application/json', 'content-length': '40', 'idempotency-key': 'idem-0001' }, { endStream: false });
    stream.on('error', () => {});
    stream.write('{"item": "bo'); // and nothing more
    const answer = await new Promise<{ status: number; code: unknown }>((done) => stream.once('response', (h) => done({ status: Number(h[':status']), code: h['x-meshcar-error'] })));
    const tookMs = Date.now() - started;
    t.equal(answer.status, 408, `408 after ${tookMs} ms`);
    t.equal(answer.code, 'request_timeout', 'x-meshcar-error request_timeout');
    t.ok(tookMs >= IDLE_MS - 50 && tookMs < IDLE_MS + 2000, `at the idle timeout of ${IDLE_MS} ms (${tookMs} ms)`);
    t.equal(appSaw, 0, 'the app never saw the request');
    const [record] = await fx.observer.waitForRequests(1);
    t.equal(record?.status, 408, 'counted as 408');
    t.equal(record?.errorCode, 'request_timeout', 'with its code');
    stream.destroy();
  });

  t.test(`codec ${codec}: an HTTP/1.1 caller's stalled body is 408 too, and its connection closes`, async (t) => {
    let appSaw = 0;
    const fx = await startInbound({ codec, idleTimeoutMs: IDLE_MS, app: { protocol: 'http', handler: () => void (appSaw += 1) } });
    t.teardown(() => fx.close());
    fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 1024 }));
    const socket = tls.connect({ ...(await fx.tlsOptions()), host: '127.0.0.1', port: fx.port, ALPNProtocols: ['http/1.1'] });
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.write('POST /orders HTTP/1.1\r\nhost: orders\r\ncontent-type: application/json\r\nidempotency-key: idem-0003\r\ncontent-length: 40\r\n\r\n{"item": "bo');
    await Promise.race([closed, new Promise((done) => setTimeout(done, IDLE_MS + 3000))]);
    t.match(text, /^HTTP\/1\.1 408 /, '408');
    t.match(text, /x-meshcar-error: request_timeout/i, 'request_timeout');
    t.ok(socket.destroyed || socket.readableEnded, 'the connection closed (the rest of the body would be read as a request)');
    t.equal(appSaw, 0, 'the app never saw the request');
  });

  t.test(`codec ${codec}: an app that does not answer is still 504 upstream_timeout`, async (t) => {
    const fx = await startInbound({
      codec,
      idleTimeoutMs: IDLE_MS,
      app: { protocol: 'http', handler: (req) => void req.resume() }, // and no answer
    });
    t.teardown(() => fx.close());
    fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 1024 }));
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    const answer = await h2Request(caller, { ':method': 'POST', ':path': '/orders', 'content-type': 'application/json', 'idempotency-key': 'idem-0002' }, JSON.stringify({ item: 'book', qty: 3 }));
    t.equal(answer.status, 504, 'the body was read and sent on: the app is the one that stalled');
    t.equal(answer.headers['x-meshcar-error'], 'upstream_timeout');
  });
}

// A body broken off on one side never reaches the other side as complete, and the authority
// the app reads is the one the caller named. Toward an h2c app, an upload the caller resets or
// drops ends with RST_STREAM only (no END_STREAM: gRPC and chunked uploads carry no length to
// catch it); toward an HTTP/2 caller, a response the app broke off ends the same way, on both
// codecs. An HTTP/2 request whose Host and :authority differ, an authority with userinfo, and
// an HTTP/1.1 request with two Host lines get 400; Upgrade offering h2c anywhere in its list
// is refused. Raw TLS sockets and a raw HTTP/2 caller, real apps.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import net from 'node:net';
import { FRONTEND_ID, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, FLAG, FRAME, frame, pingRoundTrip, requestHeaders, startFrameRecorder, statusOf, type Frame, type RecordedStream } from '../helpers/raw-h2.js';
import { rawTlsRequest, startRawApp } from '../helpers/raw-http.js';
import { offersH2c } from '../../src/http/upgrade.js';

const CODECS = ['node', 'meshcar'] as const;

/** Polls `ready` every 5 ms, for at most 5 s. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ready()) throw new Error(`not within 5 s: ${what}`);
}

const rstCodeOf = (f: Frame) => f.payload.readUInt32BE(0);

for (const codec of CODECS) {
  t.test(`codec ${codec}: an upload toward an h2c app`, async (t) => {
    const seen: RecordedStream[] = [];
    let settle: (s: RecordedStream) => void = () => {};
    const app = await startFrameRecorder((s) => {
      seen.push(s);
      settle(s);
    });
    t.teardown(() => app.close());
    const fx = await startInbound({ codec, externalApp: { protocol: 'h2c', port: app.port } });
    t.teardown(() => fx.close());
    const nextSettled = () => new Promise<RecordedStream>((resolve) => (settle = resolve));
    const tlsOptions = await fx.tlsOptions();
    const fields: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/transfer'], [':authority', 'orders']];

    t.test('reset by an HTTP/2 caller mid-body: the app sees no end of the body', async (t) => {
      const raw = await connectRawH2(fx.port, tlsOptions, { ackSettings: true });
      t.teardown(() => raw.destroy());
      const settled = nextSettled();
      raw.write(Buffer.concat([requestHeaders(1, fields, false), frame(FRAME.DATA, 0, 1, Buffer.from('partial-'))]));
      // the reset goes once the start of the body has reached the app
      await until(() => app.streams.at(-1)?.body === 'partial-', 'the app has the start of the body');
      const rst = Buffer.alloc(4);
      rst.writeUInt32BE(8); // CANCEL
      raw.write(frame(FRAME.RST_STREAM, 0, 1, rst));
      const upload = await settled;
      t.same(upload, { frames: ['HEADERS', 'DATA', 'RST'], body: 'partial-' }, 'the body broken off: RST_STREAM, no END_STREAM');
    });

    t.test('an HTTP/1.1 caller drops its connection mid-chunk: the app sees no end of the body', async (t) => {
      const settled = nextSettled();
      const tls = await import('node:tls');
      const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: ['http/1.1'], ...tlsOptions });
      socket.on('error', () => {});
      await once(socket, 'secureConnect');
      socket.write('POST /transfer HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n8\r\npartial-\r\n');
      await until(() => app.streams.length === 2 && app.streams[1]!.body === 'partial-', 'the app has the start of the body');
      socket.destroy();
      const upload = await settled;
      t.same(upload, { frames: ['HEADERS', 'DATA', 'RST'], body: 'partial-' }, 'the body broken off: RST_STREAM, no END_STREAM');
    });

    t.test('a whole upload still ends, and is answered', async (t) => {
      const session = await h2Connect(fx.port, tlsOptions);
      t.teardown(() => session.close());
      const settled = nextSettled();
      const res = await h2Request(session, { ':method': 'POST', ':path': '/transfer' }, 'all of it');
      t.equal(res.status, 200);
      const upload = await settled;
      t.equal(upload.body, 'all of it');
      t.equal(upload.frames.at(-1), 'DATA+END', 'the body ends with END_STREAM (the empty trailers)');
      t.notOk(upload.frames.includes('RST'), 'and no reset');
    });
  });

  t.test(`codec ${codec}: a response the app breaks off reaches an HTTP/2 caller as a reset`, async (t) => {
    const app = await startRawApp((_req, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial-');
      setTimeout(() => socket.destroy(), 20);
    });
    t.teardown(() => app.close());
    const fx = await startInbound({ codec, externalApp: { protocol: 'http', port: app.port } });
    t.teardown(() => fx.close());
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
    t.teardown(() => raw.destroy());
    raw.write(requestHeaders(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/cut'], [':authority', 'orders']]));
    const rst = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'RST_STREAM on stream 1');
    t.equal(rstCodeOf(rst), 2, 'RST_STREAM(INTERNAL_ERROR)');
    const data = raw.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1);
    t.equal(Buffer.concat(data.map((f) => f.payload)).toString(), 'partial-', 'what the app sent was relayed');
    t.notOk(
      raw.frames.some((f) => f.streamId === 1 && (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0),
      'no frame ended the stream cleanly',
    );
  });
}

for (const codec of CODECS) {
  t.test(`codec ${codec}: the authority the app reads is the one the caller named`, async (t) => {
    const hosts: Array<string | undefined> = [];
    const fx = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          hosts.push(req.headers.host);
          res.end('ok');
        },
      },
    });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const raw = await connectRawH2(fx.port, tlsOptions, { ackSettings: true });
    t.teardown(() => raw.destroy());
    const ask = async (id: number, extra: Array<[string, string]>, authority = 'orders') => {
      raw.write(requestHeaders(id, [[':method', 'GET'], [':scheme', 'https'], [':path', '/who'], [':authority', authority], ...extra]));
      const answer = await raw.waitFor((f) => (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM) && f.streamId === id, `an answer on stream ${id}`);
      return answer.type === FRAME.RST_STREAM ? `RST ${rstCodeOf(answer)}` : statusOf(answer);
    };
    t.equal(await ask(1, [['host', 'evil.example']]), 400, 'Host differing from :authority: 400');
    t.equal(await ask(3, [], 'admin@orders'), 400, 'userinfo in :authority: 400');
    // Node's core http2 (nghttp2) refuses it in the codec; meshcar's codec leaves it to the inbound
    t.equal(await ask(5, [], 'orders evil'), codec === 'node' ? 'RST 1' : 400, 'a space in :authority is refused');
    t.equal(await ask(7, [['host', 'ORDERS']]), 200, 'the same name in another case passes');
    t.equal(await ask(9, []), 200, ':authority alone passes');
    t.same(hosts, ['ORDERS', 'orders'], 'the app saw only the requests that passed, with their authority');

    const twice = await rawTlsRequest(fx.port, tlsOptions, 'GET /who HTTP/1.1\r\nHost: orders\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    t.equal(twice.status, 400, 'HTTP/1.1 with two Host lines: 400');
    t.match(twice.body, /more than one Host/, 'the JSON error says why');
    t.equal(hosts.length, 2, 'and the app never saw it');
    const none = await rawTlsRequest(fx.port, tlsOptions, 'GET /who HTTP/1.1\r\nConnection: close\r\n\r\n');
    t.equal(none.status, 400, 'HTTP/1.1 without Host: 400');
    t.equal(none.headers['x-meshcar-error'], 'bad_request');
    t.match(none.body, /"error":"bad_request".*must carry a Host header/, 'as JSON saying why (Node\'s own answer is bare)');
    t.equal(hosts.length, 2, 'and the app never saw that one either');
    const old = await rawTlsRequest(fx.port, tlsOptions, 'GET /who HTTP/1.0\r\n\r\n');
    t.equal(old.status, 200, 'HTTP/1.0 without Host passes (it has none to give)');
  });
}

t.test('Upgrade offering h2c anywhere in its list is refused', async (t) => {
  t.ok(offersH2c('websocket, h2c'));
  t.ok(offersH2c(' H2C '));
  t.ok(offersH2c('h2c/1, websocket'));
  t.notOk(offersH2c('websocket'));
  t.notOk(offersH2c('h2'));
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const res = await rawTlsRequest(fx.port, await fx.tlsOptions(FRONTEND_ID), 'GET /chat HTTP/1.1\r\nHost: orders\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n');
  t.equal(res.status, 400, 'Upgrade: websocket, h2c → 400');
});

/**
 * An HTTP/1.1 app that answers 404 to every request head at once, never reading a body, and
 * keeps what each connection brought: the bytes of a request carried on a connection whose
 * previous body was cut short would show up there.
 */
async function startEarlyAnswerApp() {
  const connections: Array<{ data: string; closed: boolean }> = [];
  const server = net.createServer((socket) => {
    const seen = { data: '', closed: false };
    connections.push(seen);
    socket.on('error', () => {});
    socket.on('close', () => (seen.closed = true));
    let heads = 0;
    socket.on('data', (chunk: Buffer) => {
      seen.data += chunk.toString('latin1');
      const count = seen.data.split('\r\n\r\n').length - 1;
      for (; heads < count; heads++) socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, connections, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

for (const codec of CODECS) {
  for (const [code, framing] of [[0, 'content-length'], [8, 'content-length'], [0, 'chunked']] as const) {
    t.test(`codec ${codec}: an Expect upload (${framing}) reset (${code === 0 ? 'NO_ERROR' : 'CANCEL'}) after the app's early answer is never whole, nor leaves its app connection in use`, async (t) => {
      const app = await startEarlyAnswerApp();
      t.teardown(() => app.close());
      const fx = await startInbound({ codec, externalApp: { protocol: 'http', port: app.port } });
      t.teardown(() => fx.close());
      const tlsOptions = await fx.tlsOptions();

      // Expect: the request goes to the app on node:http, its head at once; the app says 404 without reading
      const raw = await connectRawH2(fx.port, tlsOptions, { ackSettings: true });
      t.teardown(() => raw.destroy());
      const length: Array<[string, string]> = framing === 'content-length' ? [['content-length', '120']] : [];
      raw.write(requestHeaders(1, [[':method', 'POST'], [':scheme', 'https'], [':path', '/first'], [':authority', 'orders'], ['expect', '100-continue'], ...length], false));
      const answer = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, "the app's early answer");
      t.equal(statusOf(answer), 404, "the app's early answer reaches the caller");
      // 10 of the 120 bytes announced, then the caller breaks off
      raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('x'.repeat(10))));
      await until(() => app.connections[0]?.data.includes('x'.repeat(10)) === true || app.connections[0]?.closed === true, 'the start of the body relayed, or the connection closed');
      const rst = Buffer.alloc(4);
      rst.writeUInt32BE(code);
      raw.write(frame(FRAME.RST_STREAM, 0, 1, rst));
      await pingRoundTrip(raw, 1); // the reset has been handled
      t.notMatch(app.connections[0]?.data, /\r\n0\r\n\r\n/, 'the cut chunked body never gets its last chunk');

      // another caller's request must reach the app as a request of its own, not as the rest of that body
      const session = await h2Connect(fx.port, tlsOptions);
      t.teardown(() => session.close());
      const second = await h2Request(session, { ':method': 'POST', ':path': '/second', 'content-length': '3', expect: '100-continue' }, 'xyz');
      t.equal(second.status, 404, `the next request is answered by the app (${second.body.toString()})`);
      const carrying = app.connections.filter((c) => c.data.includes('/second'));
      t.equal(carrying.length, 1, 'one app connection carries the next request');
      t.ok(carrying[0]?.data.startsWith('POST /second '), 'as its first bytes: on a new connection');
      t.notMatch(app.connections[0]?.data, /second/, 'never on the connection of the cut body');
      await until(() => app.connections[0]?.closed === true, 'the app connection of the cut body is closed');
    });
  }
}

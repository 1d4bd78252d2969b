// An h2c app that accepts the TCP connection and then says nothing (no SETTINGS: hung, or not
// an HTTP/2 server): the inbound's session to it used to stay in the pool for ever, every
// request on it (and those queued behind its one cold stream) waiting for `inbound.timeout`
// (504), and no fresh connection was ever dialled. Now a session gets `appFirstSettingsMs`
// (default 10 s; 1 s here) for the app's first SETTINGS: past it the session is dropped, the
// requests on it and those waiting for a slot are answered 503 upstream_unavailable saying the
// app accepted the connection but did not speak HTTP/2, and the next request dials afresh. The
// app: a raw TCP server that keeps its connections silent until the test lets it speak, then
// hands every new one to Node's http2 server. Callers over mTLS, HTTP/2, both codecs.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

/** The app: silent connections until speak(), then a real h2c server for every new one. */
async function silentThenWell(): Promise<{ port: number; connections: () => number; speak: () => void; close: () => Promise<void> }> {
  const good = http2.createServer();
  good.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.end('well');
  });
  let silent = true;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!silent) good.emit('connection', socket);
    // else: accepted, never read, never written to
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    speak: () => void (silent = false),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The inbound's timeout: a request left to it is answered 504 after this. */
const TIMEOUT_MS = 8000;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: requests to an app that never sends SETTINGS get 503 within the bound, then a fresh connection serves`, async (t) => {
    const app = await silentThenWell();
    t.teardown(() => app.close());
    const fx = await startInbound({ codec, timeoutMs: TIMEOUT_MS, limits: { appFirstSettingsMs: 1000 }, externalApp: { protocol: 'h2c', port: app.port } });
    t.teardown(() => fx.close());
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());

    // one request goes out on the new session's cold stream, the other two wait for a slot
    const started = performance.now();
    const answers = await Promise.all([1, 2, 3].map((i) => h2Request(caller, { ':path': `/silent/${i}` })));
    const took = performance.now() - started;
    for (const [i, res] of answers.entries()) {
      const body = JSON.parse(res.body.toString() || '{}') as { error?: string; message?: string };
      t.same([res.status, body.error], [503, 'upstream_unavailable'], `request ${i + 1}: 503 upstream_unavailable`);
      t.match(body.message, new RegExp(`^the app at 127\\.0\\.0\\.1:${app.port} accepted the connection but did not speak HTTP/2 \\(no SETTINGS frame within 1000 ms\\)`), `request ${i + 1}: the message says what the app did (${body.message})`);
    }
    t.ok(took < TIMEOUT_MS - 1000, `answered by the bound, not the inbound's ${TIMEOUT_MS} ms timeout (${Math.round(took)} ms)`);
    t.equal(app.connections(), 1, 'one connection was tried for them');
    t.same(
      fx.observer.requests.map((r) => [r.status, r.errorCode]),
      Array(3).fill([503, 'upstream_unavailable']),
      'recorded as upstream_unavailable',
    );

    app.speak();
    const res = await h2Request(caller, { ':path': '/well' });
    t.same([res.status, res.body.toString()], [200, 'well'], 'the next request dials afresh and is answered');
    t.equal(app.connections(), 2, 'on a new connection');
  });
}

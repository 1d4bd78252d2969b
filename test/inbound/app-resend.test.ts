// A pooled connection to the app that breaks under a request (ECONNRESET on a reused socket):
// the request may or may not have reached the app, so the inbound sends it once more only when
// that is safe (an idempotent method, or an Idempotency-Key) and otherwise answers 502
// upstream_reset. The app here is raw TCP: it reads the second request on each connection,
// records it, and resets the connection instead of answering.

import t from 'tap';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';
import { startRawApp, type RawRequestSeen } from '../helpers/raw-http.js';

/** The app records every request it reads; the first /reset- request on a connection that has answered before is never answered. */
async function startResettingApp() {
  const received: RawRequestSeen[] = [];
  const app = await startRawApp((request, socket) => {
    received.push(request);
    if (request.served > 1 && request.line.includes(' /reset-')) socket.resetAndDestroy();
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
  });
  return { ...app, received };
}

t.test('a reset on a reused app connection', async (t) => {
  const app = await startResettingApp();
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port }, limits: { maxAppSockets: 1 } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();

  /** A fresh pooled connection, then the request under test as its second request. */
  async function onReusedConnection(method: string, path: string, headers: Record<string, string> = {}) {
    t.equal((await h1Request(fx.port, tlsOptions, { path: '/warm' })).status, 200);
    const before = app.received.length;
    const res = await h1Request(fx.port, tlsOptions, { method, path, headers });
    return { res, lines: app.received.slice(before).map((r) => r.line) };
  }

  t.test('POST without a body is not sent twice: 502 upstream_reset', async (t) => {
    const { res, lines } = await onReusedConnection('POST', '/reset-charge');
    t.equal(res.status, 502);
    t.equal(JSON.parse(res.body).error, 'upstream_reset');
    t.same(lines, ['POST /reset-charge HTTP/1.1'], 'the app saw the POST exactly once');
  });

  t.test('PATCH is not sent twice either', async (t) => {
    const { res, lines } = await onReusedConnection('PATCH', '/reset-patch');
    t.equal(res.status, 502);
    t.same(lines, ['PATCH /reset-patch HTTP/1.1']);
  });

  t.test('GET is sent once more, on a new connection', async (t) => {
    const { res, lines } = await onReusedConnection('GET', '/reset-read');
    t.equal(res.status, 200);
    t.same(lines, ['GET /reset-read HTTP/1.1', 'GET /reset-read HTTP/1.1']);
  });

  t.test('POST with an Idempotency-Key is sent once more', async (t) => {
    const { res, lines } = await onReusedConnection('POST', '/reset-keyed', { 'idempotency-key': 'k-1' });
    t.equal(res.status, 200);
    t.same(lines, ['POST /reset-keyed HTTP/1.1', 'POST /reset-keyed HTTP/1.1']);
  });
});

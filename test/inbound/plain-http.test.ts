// Plain HTTP sent to the inbound's mutual-TLS port (`curl http://`, the scheme mistyped) gets a
// 400 with the JSON error body saying to send it to the calling service's sidecar outbound port,
// where it got "Empty reply from server"; the handshake failure is still counted (`protocol`).
// The answer reaches a client still sending its body (the socket lingers, as after any early
// answer), and the sidecar holds no such socket beyond the linger's bound, however the client
// behaves: it never reads nor closes, keeps sending, or resets at once. Real curl, raw sockets
// and an mTLS client against a real inbound.

import t from 'tap';
import { LINGER_MS, LINGER_IDLE_MS } from '../../src/http/lingering-close.js';
import { h1Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { rawTcpRequest, rawTcpUntilClosed } from '../helpers/raw-http.js';
import { checkPlainHttpAnswer, curlPlain, heldAfter, resetAtOnce, silentAfterRequest, uploadsThenRead } from '../helpers/plain-http.js';
import { serverLetGoWithin } from '../helpers/connections.js';

const MB = 1024 * 1024;
const SAID = /^plain HTTP sent to meshcar's inbound port, which takes only mutual TLS from other sidecars: send plain HTTP to the outbound port of the calling service's own sidecar/;
const GET = 'GET /orders HTTP/1.1\r\nHost: orders\r\n\r\n';

let fx: InboundFixture;
t.before(async () => {
  fx = await startInbound();
});
t.teardown(() => fx.close());

/** The failures counted so far: each a `direction:reason`. */
const counted = () => fx.observer.tlsFailures.map((f) => `${f.direction}:${f.reason}`);

/** An mTLS request from a caller with its SVID: the listener still serves. */
async function stillServes(t: Tap.Test): Promise<void> {
  const answer = await h1Request(fx.port, await fx.tlsOptions(), { path: '/after' });
  t.equal(answer.status, 200, 'HTTPS with a client certificate still works on the same listener');
}

t.test('curl http:// gets a 400 with the JSON error body, counted as a protocol failure', async (t) => {
  const before = counted().length;
  checkPlainHttpAnswer(t, await curlPlain([`http://127.0.0.1:${fx.port}/orders`]), SAID);

  // a body on its way, as curl -d sends it
  const posted = await curlPlain(['-d', '{"qty":1}', `http://127.0.0.1:${fx.port}/orders`]);
  t.equal(posted.statusLine, 'HTTP/1.1 400 Bad Request', 'a POST with a body gets it too');
  // the inbound port taken for an HTTP proxy: curl sends CONNECT, and reads the proxy's 400
  const proxied = await curlPlain(['-x', `http://127.0.0.1:${fx.port}`, 'https://orders.invalid/']);
  t.match(proxied.stderr, /CONNECT tunnel failed, response 400/, 'CONNECT (the port as an HTTP proxy) gets a 400');
  const connect = await rawTcpRequest(fx.port, 'CONNECT orders:443 HTTP/1.1\r\nHost: orders:443\r\n\r\n');
  t.match((JSON.parse(connect.body) as { message: string }).message, /^an HTTP proxy request \(CONNECT\) sent as plain HTTP to meshcar's inbound port/);

  const failures = (await fx.observer.waitForTlsFailures(before + 4, 5000)).slice(before);
  t.same(failures.map((f) => `${f.direction}:${f.reason}`), ['inbound:protocol', 'inbound:protocol', 'inbound:protocol', 'inbound:protocol'], 'each still counted as a protocol failure');
  await stillServes(t);
});

t.test('a raw POST gets the 400, also while it is still sending a body larger than the kernel buffers', async (t) => {
  const small = await rawTcpRequest(fx.port, 'POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"qty":1}');
  t.equal(small.status, 400);
  t.equal(small.headers['content-type'], 'application/json');
  t.match((JSON.parse(small.body) as { message: string }).message, SAID);
  // the client sends its whole body before it reads (Python's http.client does): closed at
  // once, the kernel would reset its next write and the answer be lost unread
  const upload = 8 * MB;
  const outcomes = await uploadsThenRead(fx.port, `POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Length: ${upload}\r\n\r\n`, upload, 5);
  t.same(outcomes, Array(5).fill('HTTP/1.1 400 Bad Request'), 'each read the 400 after sending 8 MiB');
  await stillServes(t);
});

t.test('a client that never reads nor closes is let go within the linger bound, also one that keeps sending', async (t) => {
  const since = Date.now();
  const silent = await silentAfterRequest(fx.port, GET, false);
  const sending = await silentAfterRequest(fx.port, GET, true);
  t.teardown(() => {
    silent.stop();
    sending.stop();
  });
  const [silentAfter, sendingAfter] = await Promise.all([serverLetGoWithin(fx.port, silent.localPort, since, LINGER_MS + 3000), serverLetGoWithin(fx.port, sending.localPort, since, LINGER_MS + 3000)]);
  t.type(silentAfter, 'number', `one that sends nothing more is let go (${String(silentAfter)})`);
  t.ok((silentAfter as number) < LINGER_IDLE_MS + 1500, 'after about the linger’s idle bound');
  t.type(sendingAfter, 'number', `one that keeps sending is let go (${String(sendingAfter)})`);
  t.ok((sendingAfter as number) < LINGER_MS + 1500, 'within the linger’s whole bound');
  await stillServes(t);
});

t.test('clients that reset at once neither crash the sidecar nor leave sockets behind', async (t) => {
  await resetAtOnce(fx.port, GET, 40);
  const held = await heldAfter(fx.port, LINGER_MS + 3000);
  t.same(held, [], 'no connection left on the inbound port');
  await stillServes(t);
});

t.test('anything else that is not TLS is closed at once, with nothing written', async (t) => {
  const before = counted().length;
  const closed = await rawTcpUntilClosed(fx.port, 'SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 random bytes, no HTTP method', 5000);
  t.same(closed, { text: '', closed: true }, 'closed without an answer');
  t.same((await fx.observer.waitForTlsFailures(before + 1, 5000)).slice(before).map((f) => `${f.direction}:${f.reason}`), ['inbound:protocol'], 'counted as before');
});

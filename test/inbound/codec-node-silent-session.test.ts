// http2.codec node: a caller's session that nghttp2 ended on a connection error with a GOAWAY
// alone (an HPACK error, DATA on stream 0) is closed once a PING goes unanswered: nghttp2 ignores
// everything after such an error and Node stops reading the socket, so the connection stayed
// open (and counted against the caller's connections) until the session's maximum age, 10 min,
// even after the caller closed its end. A live idle caller answers the PINGs and keeps its
// session. Raw frames and Node's http2 client over real mTLS, Node's codec on the inbound,
// the probe's times shortened.

import t from 'tap';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FLAG, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const PROBE = { sessionProbeIdleMs: 150, sessionProbeTimeoutMs: 300 };

async function until(done: () => boolean, what: string, timeoutMs = 4_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ERRORS: ReadonlyArray<{ name: string; bytes: Buffer; code: number }> = [
  // a header block that indexes entry 0 of the HPACK table: COMPRESSION_ERROR
  { name: 'an HPACK error', bytes: frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.from([0x80])), code: 0x9 },
  { name: 'DATA on stream 0', bytes: frame(FRAME.DATA, 0, 0, Buffer.from('x')), code: 0x1 },
];

for (const error of ERRORS) {
  t.test(`node codec: after ${error.name} (GOAWAY from nghttp2), the connection is closed, also when the caller left first`, async (t) => {
    const fx = await startInbound({ codec: 'node', limits: PROBE });
    t.teardown(() => fx.close());
    const options = await fx.tlsOptions(`spiffe://${TD}/svc/broken`);

    const stays = await connectRawH2(fx.port, options, { ackSettings: true });
    t.teardown(() => stays.destroy());
    stays.write(error.bytes);
    const goaway = await stays.waitFor((f) => f.type === FRAME.GOAWAY, 'GOAWAY');
    t.equal(goaway.payload.readUInt32BE(4), error.code, 'nghttp2 answered with GOAWAY and its code');
    await until(() => stays.socket.destroyed, 'the server closed the connection the caller keeps open');

    const leaves = await connectRawH2(fx.port, options, { ackSettings: true });
    leaves.write(error.bytes);
    await leaves.waitFor((f) => f.type === FRAME.GOAWAY, 'GOAWAY');
    leaves.destroy();
    await until(() => fx.inbound.connections === 0, 'the inbound let go of the connection the caller closed');
    t.pass('both connections gone within seconds, not at the 10 min maximum age');
  });
}

t.test('node codec: a live idle caller answers the PINGs and keeps its session', async (t) => {
  const fx = await startInbound({ codec: 'node', limits: PROBE });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/a' })).status, 200);
  let pings = 0;
  session.on('ping', () => pings++);
  await until(() => pings >= 4, 'four PINGs over the idle session');
  t.notOk(session.destroyed || session.closed, 'the session is still open');
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/b' })).status, 200, 'and serves the next request');
  t.equal(fx.inbound.connections, 1, 'on the same connection');
});

t.test('node codec: a caller holding back a large answer by flow control answers the PINGs and keeps its session', async (t) => {
  const fx = await startInbound({ codec: 'node', limits: PROBE, app: { protocol: 'http', handler: (_req, res) => res.end(Buffer.alloc(8 * 1024 * 1024, 'x')) } });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  let pings = 0;
  session.on('ping', () => pings++);
  const stream = session.request({ ':method': 'GET', ':path': '/big' });
  stream.on('error', () => {});
  await new Promise((resolve) => stream.once('data', resolve));
  stream.pause(); // Node's client stops returning window: the answer waits on flow control
  await until(() => pings >= 3, 'three PINGs while the answer waits');
  t.notOk(session.destroyed || stream.destroyed, 'the session and its stream are still open');
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.resume();
  await new Promise((resolve) => stream.once('end', resolve));
  t.ok(bytes > 7 * 1024 * 1024, 'and the whole answer comes once it reads again');
});

t.test('node codec: a caller that stops reading its socket altogether is cut, queued bytes and all', async (t) => {
  const fx = await startInbound({ codec: 'node', limits: PROBE, app: { protocol: 'http', handler: (_req, res) => res.end(Buffer.alloc(8 * 1024 * 1024, 'x')) } });
  t.teardown(() => fx.close());
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(FRONTEND_ID), { ackSettings: true });
  t.teardown(() => raw.destroy());
  // windows wide open: the answer is held by the socket, not by flow control
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(64 * 1024 * 1024);
  raw.write(Buffer.concat([frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0x7f, 0xff, 0xff, 0xff])), requestHeaders(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/big'], [':authority', 'localhost']])]));
  await raw.waitFor((f) => f.type === FRAME.DATA, 'the first DATA');
  raw.socket.pause();
  await until(() => fx.inbound.connections === 0, 'the inbound let go of the connection');
  t.pass('cut at the PING timeout (the session\'s destroy alone would wait for the queued bytes for good)');
});

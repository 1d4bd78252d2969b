// http2.codec node: a caller's connection closed for rapid reset is cut a second after its
// GOAWAY, also when the caller has stopped reading its socket with our answers queued. The
// session's destroy() alone ends the socket only once what is queued is written: such a caller
// kept the connection (counted against its cap, its queued bytes held) for good. Raw frames
// over real mTLS, Node's codec on the inbound.

import t from 'tap';
import { startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const GET = (path: string): Array<readonly [string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', 'localhost']];

async function until(done: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

type Test = { teardown(fn: () => unknown): void };

/**
 * A caller on Node's codec that asked for an 8 MiB answer with every window wide open (the
 * answer fills the socket, not a flow-control window), got its first DATA and now reads
 * nothing: what it sends next is written with `raw.write`, and `rejected` collects the reasons
 * its session was closed for.
 */
async function stalledReader(t: Test, inbound: Parameters<typeof startInbound>[0]) {
  const fx = await startInbound(inbound);
  t.teardown(() => fx.close());
  const rejected: string[] = [];
  Object.assign(fx.observer, { sessionRejected: (_d: string, reason: string) => rejected.push(reason) });
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/abusive`), { ackSettings: true });
  t.teardown(() => raw.destroy());
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(64 * 1024 * 1024);
  raw.write(Buffer.concat([frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0x7f, 0xff, 0xff, 0xff])), requestHeaders(1, GET('/big'))]));
  await raw.waitFor((f) => f.type === FRAME.DATA, 'the first DATA');
  raw.socket.pause(); // reads nothing more
  return { fx, raw, rejected };
}

t.test('node codec: a rapid-reset caller that reads nothing is cut a second after its GOAWAY', async (t) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');
  const { fx, raw, rejected } = await stalledReader(t, { codec: 'node', limits: { maxResetsPer10s: 20 }, app: { protocol: 'http', handler: (req, res) => res.end(req.url === '/big' ? big : 'ok') } });
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(0x8);
  const resets: Buffer[] = [];
  for (let i = 0; i < 50; i++) resets.push(requestHeaders(3 + 2 * i, GET('/x')), frame(FRAME.RST_STREAM, 0, 3 + 2 * i, cancel));
  raw.write(Buffer.concat(resets));
  await until(() => rejected.length === 1, 'the rapid reset counted');
  t.same(rejected, ['rapid_reset']);
  await until(() => fx.inbound.connections === 0, 'the inbound let go of the connection');
  t.pass('cut within seconds, its queued answer and all');
});

t.test('node codec: a caller nghttp2 ends for a PING flood while it reads nothing is cut too', async (t) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');
  const { fx, raw, rejected } = await stalledReader(t, { codec: 'node', app: { protocol: 'http', handler: (_req, res) => res.end(big) } });
  raw.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => frame(FRAME.PING, 0, 0, Buffer.from([0, 0, 0, 0, 0, 0, i >> 8, i & 0xff])))));
  await until(() => rejected.length === 1, 'the flood counted');
  t.same(rejected, ['outbound_flood']);
  await until(() => fx.inbound.connections === 0, 'the inbound let go of the connection');
  t.pass('cut, its queued answer and all');
});

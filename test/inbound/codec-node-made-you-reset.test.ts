// http2.codec node: a caller that makes nghttp2 reset its streams (MadeYouReset, CVE-2025-8671:
// a body shorter than its content-length, each stream reset PROTOCOL_ERROR by the codec, not by
// the caller) trips the inbound's reset guard, counted as made_you_reset as on the meshcar
// codec (it was rapid_reset: Node names no sender, the guard now reads the RST_STREAM code), and
// the streams it had sent behind them, which
// Node hands over once the session is gone, are refused without ending the process: one such
// stream was closed with no 'error' listener and its PROTOCOL_ERROR was thrown (the sidecar,
// every caller's requests with it, went down). Another caller is served after. Raw frames
// over real mTLS, Node's codec on the inbound.

import t, { type Test } from 'tap';
import type { Direction, SessionRejectReason } from '../../src/metrics/traffic.js';
import { ResetGuard } from '../../src/inbound/reset-guard.js';
import { FRONTEND_ID, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { connectRawH2, frame, FLAG, FRAME, requestHeaders } from '../helpers/raw-h2.js';

const POST_5: Array<readonly [string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/orders'], [':authority', 'localhost'], ['content-length', '5']];

/** Streams whose body ends 4 bytes short of its content-length: nghttp2 resets each (PROTOCOL_ERROR). */
function shortBodies(count: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(requestHeaders(2 * i + 1, POST_5, false), frame(FRAME.DATA, FLAG.END_STREAM, 2 * i + 1, Buffer.from('x')));
  return Buffer.concat(frames);
}

/**
 * 240 short-body streams from a compromised caller; `busyMs`: the process (the inbound runs in
 * it) is kept busy that long after the write, so the inbound finds every frame waiting at once.
 * Returns the reasons the session closes were counted under, and the fixture.
 */
async function shortBodyBurst(t: Test, busyMs: number): Promise<{ rejected: SessionRejectReason[]; fx: Awaited<ReturnType<typeof startInbound>> }> {
  const fx = await startInbound({ codec: 'node', limits: { maxResetsPer10s: 20 } });
  t.teardown(() => fx.close());
  const rejected: SessionRejectReason[] = [];
  Object.assign(fx.observer, { sessionRejected: (_d: Direction, reason: SessionRejectReason) => rejected.push(reason) });
  const raw = await connectRawH2(fx.port, await fx.tlsOptions(`spiffe://${TD}/svc/compromised`), { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(shortBodies(240));
  const busyUntil = Date.now() + busyMs;
  while (Date.now() < busyUntil);
  await raw.waitFor((f) => f.type === FRAME.GOAWAY, 'the GOAWAY closing the session', 10_000);
  await raw.closed;
  return { rejected, fx };
}

t.test('node codec: streams nghttp2 resets for the caller trip the reset guard; the streams behind them end nothing but the session', async (t) => {
  const { rejected, fx } = await shortBodyBurst(t, 0);
  t.same(rejected, ['made_you_reset'], 'the session was closed once, counted as made_you_reset (not rapid_reset)');
  const other = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => other.destroy());
  t.equal((await h2Request(other, { ':method': 'GET', ':path': '/orders' })).status, 200, 'another caller is served: the process is up');
});

t.test('node codec: the same streams read in one go while the sidecar was busy trip the guard too', async (t) => {
  // Node then hands the streams over already reset, their 'aborted' and 'close' events gone by:
  // uncounted, the session stayed open until its idle timeout (seen once in CI, on a loaded host)
  const { rejected } = await shortBodyBurst(t, 100);
  t.same(rejected, ['made_you_reset'], 'the session was closed, counted as made_you_reset');
});

t.test('reset guard: the close is named for the resets it mostly counted', async (t) => {
  const reasons: string[] = [];
  const provoked = new ResetGuard(10, (_g, _resets, _completed, reason) => reasons.push(reason), 0);
  for (let i = 0; i < 4; i++) provoked.streamReset(false, 0, 1);
  for (let i = 0; i < 7; i++) provoked.streamProvoked(1);
  const cancelled = new ResetGuard(10, (_g, _resets, _completed, reason) => reasons.push(reason), 0);
  for (let i = 0; i < 4; i++) cancelled.streamProvoked(1);
  for (let i = 0; i < 7; i++) cancelled.streamReset(false, 0, 1);
  t.same(reasons, ['made_you_reset', 'rapid_reset'], 'seven of eleven provoked: made_you_reset; seven of eleven cancelled: rapid_reset');
  const answered = new ResetGuard(2, (_g, _resets, _completed, reason) => reasons.push(reason), 0);
  for (let i = 0; i < 3; i++) answered.streamProvoked(1);
  t.equal(reasons.at(-1), 'made_you_reset', 'a provoked reset counts whatever the stream had (as the meshcar codec counts its stream errors)');
});

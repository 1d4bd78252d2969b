// The codec's abuse windows (SETTINGS, PINGs, resets: limits.budgetWindowMs) and a stream's age
// (a server counts resets within a second of opening as premature, limits.ts) ran on the wall
// clock. A clock stepped back (NTP correcting a host that ran ahead, a VM restored from a
// snapshot) kept the windows from renewing for the whole step: a peer's ordinary PINGs were cut
// as ping_flood after the budget of one window, and streams cancelled after seconds counted as
// rapid reset. Both run on the process's running time now. Our server on mutual TLS, a raw
// client, this process's Date moved an hour back (test/helpers/movable-clock.ts).

import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOurServer, rawClientOf } from './fixtures/h2-helpers.js';
import { FRAME, frame, pingRoundTrip, requestHeaders, settingsFrame, describe } from '../helpers/raw-h2.js';
import { movableClock } from '../helpers/movable-clock.js';

const STEP_BACK_MS = 3_600_000;
const WINDOW_MS = 300;

/** Until `ms` of the process's running time have passed since `since` (a moved Date does not move it). */
async function untilRunning(since: number, ms: number): Promise<void> {
  const left = since + ms - performance.now();
  if (left > 0) await sleep(left);
}

/** Four windows' worth of `frames` (each under the budget of one window), sent after the clock is stepped back. */
async function fourWindowsAfterStepBack(t: Tap.Test, frames: Buffer): Promise<{ goaways: string; closed: unknown[] }> {
  const server = await startOurServer((stream) => stream.on('error', () => {}), { tls: true, limits: { budgetWindowMs: WINDOW_MS, maxPingsPerWindow: 10, maxSettingsPerWindow: 10 } });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  await pingRoundTrip(raw, 1);
  const clock = movableClock();
  t.teardown(() => clock.restore());
  clock.offset.ms = -STEP_BACK_MS;
  for (let round = 0; round < 4; round++) {
    const started = performance.now();
    raw.write(frames);
    await pingRoundTrip(raw, 100 + round);
    await untilRunning(started, WINDOW_MS + 50);
  }
  clock.restore();
  return { goaways: describe(raw.frames.filter((f) => f.type === FRAME.GOAWAY)), closed: server.observer.closed };
}

t.test('PINGs under the budget, window after window, after the clock is stepped back', async (t) => {
  const ping = frame(FRAME.PING, 0, 0, Buffer.alloc(8));
  // 7 and the round trip's: 8 a window, the limit 10; 32 in all
  const { goaways, closed } = await fourWindowsAfterStepBack(t, Buffer.concat(Array.from({ length: 7 }, () => ping)));
  t.same(closed, [], 'no ping_flood');
  t.equal(goaways, '', 'no GOAWAY');
});

t.test('SETTINGS under the budget, window after window, after the clock is stepped back', async (t) => {
  const { goaways, closed } = await fourWindowsAfterStepBack(t, Buffer.concat(Array.from({ length: 8 }, () => settingsFrame())));
  t.same(closed, [], 'no settings_flood');
  t.equal(goaways, '', 'no GOAWAY');
});

t.test('streams cancelled more than a second after opening are ordinary ends, across a clock step back', async (t) => {
  // held unanswered: resets before an answer count when premature (within 1 s of opening)
  const server = await startOurServer((stream) => stream.on('error', () => {}), { tls: true, limits: { maxResetsPerWindow: 2 } });
  t.teardown(server.close);
  const raw = await rawClientOf(t, server.port);
  const ids = [1, 3, 5, 7, 9];
  raw.write(Buffer.concat(ids.map((id) => requestHeaders(id, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'x'], [':path', '/hold']]))));
  await pingRoundTrip(raw, 1);
  const opened = performance.now();
  const clock = movableClock();
  t.teardown(() => clock.restore());
  clock.offset.ms = -STEP_BACK_MS;
  await untilRunning(opened, 1_100);
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(8); // CANCEL
  raw.write(Buffer.concat(ids.map((id) => frame(FRAME.RST_STREAM, 0, id, cancel))));
  await pingRoundTrip(raw, 2);
  clock.restore();
  t.same(server.observer.closed, [], 'five resets of streams 1.1 s old, the limit 2: no rapid_reset');
  t.equal(describe(raw.frames.filter((f) => f.type === FRAME.GOAWAY)), '', 'no GOAWAY');
});

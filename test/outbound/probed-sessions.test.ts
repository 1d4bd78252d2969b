// The rule of probed-sessions.ts on its own: a session whose probe is out is skipped only once
// the probe has gone unanswered for PROBED_SESSION_GRACE_MS (a live peer's ACK comes within a
// round trip) and only while nothing was read since it (a slow path's ACK comes behind its
// data); requests held wait on one promise per session, settled when the probe ends or after
// a short turn, when they look again; the endpoint's counter hears every change.
// probed-session-skipped.test.ts covers the whole path over real sockets.

import t from 'tap';
import { PROBED_SESSION_GRACE_MS, ProbedSessions } from '../../src/outbound/probed-sessions.js';
import { waitFor } from '../helpers/mesh.js';

t.test('a probed session is skipped from the grace on, while silent, until its probe ends', async (t) => {
  const probed = new ProbedSessions<object>();
  const a = {};
  const b = {};
  const told: boolean[] = [];
  let silent = true;
  const hookA = probed.hook(a, (out) => told.push(out), () => silent);
  t.notOk(probed.skips(a), 'no probe out: taken');
  const sent = performance.now();
  hookA(true);
  t.notOk(probed.skips(a), 'its probe just sent: still taken (a live peer answers within a round trip)');
  t.notOk(probed.skips(b), 'another session: taken');
  await waitFor(async () => probed.skips(a), 2_000, 'the session skipped');
  t.ok(performance.now() - sent >= PROBED_SESSION_GRACE_MS, `skipped only after ${PROBED_SESSION_GRACE_MS} ms`);
  silent = false;
  t.notOk(probed.skips(a), 'taken while bytes come from the peer (its ACK may be behind them)');
  silent = true;
  t.notOk(probed.skips(b), 'the other still taken');

  // a held request looks again within a turn while the probe is out (the peer's bytes may be back);
  // the turn's timer is unref'd, as a pool's would be: this one keeps the test's process up meanwhile
  const up = setTimeout(() => {}, 2_000);
  const turnStarted = performance.now();
  await probed.settled(a);
  clearTimeout(up);
  const turnMs = performance.now() - turnStarted;
  t.ok(turnMs < 1_000, `a turn ends the wait with the probe still out (${Math.round(turnMs)} ms)`);
  t.ok(probed.skips(a), 'still skipped after it');

  const held = [probed.settled(a), probed.settled(a)];
  t.equal(held[0], held[1], 'the requests held share one promise');
  let woken = 0;
  for (const p of held) void p.then(() => woken++);
  await new Promise((r) => setImmediate(r));
  t.equal(woken, 0, 'held while the probe is out');
  hookA(false);
  await Promise.all(held);
  t.equal(woken, 2, 'woken when it ends');
  t.notOk(probed.skips(a), 'taken again');
  t.same(told, [true, false], "the endpoint's counter told of both");
  await probed.settled(a); // no probe out: at once
});

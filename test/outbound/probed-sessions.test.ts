// The rule of probed-sessions.ts on its own: a session whose probe is out is skipped only once
// the probe has gone unanswered for PROBED_SESSION_GRACE_MS (a live peer's ACK comes within a
// round trip: a request in that window must not dial a session of its own), and from the
// probe's end on it takes streams again; the endpoint's counter hears every change.
// probed-session-skipped.test.ts covers the whole path over real sockets.

import t from 'tap';
import { PROBED_SESSION_GRACE_MS, ProbedSessions } from '../../src/outbound/probed-sessions.js';
import { waitFor } from '../helpers/mesh.js';

t.test('a probed session is skipped from the grace on, until its probe ends', async (t) => {
  const probed = new ProbedSessions<object>();
  const a = {};
  const b = {};
  const told: boolean[] = [];
  const hookA = probed.hook(a, (out) => told.push(out));
  t.notOk(probed.skips(a), 'no probe out: taken');
  const sent = performance.now();
  hookA(true);
  t.notOk(probed.skips(a), 'its probe just sent: still taken (a live peer answers within a round trip)');
  t.notOk(probed.skips(b), 'another session: taken');
  await waitFor(async () => probed.skips(a), 2_000, 'the session skipped');
  t.ok(performance.now() - sent >= PROBED_SESSION_GRACE_MS, `skipped only after ${PROBED_SESSION_GRACE_MS} ms`);
  t.notOk(probed.skips(b), 'the other still taken');
  hookA(false);
  t.notOk(probed.skips(a), 'the probe ended: taken again');
  t.same(told, [true, false], "the endpoint's counter told of both");
});

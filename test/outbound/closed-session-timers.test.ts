// A closed upstream session leaves nothing of its maximum-age timer behind (src/timer-clear.ts,
// used by h2-session-pool.ts and session-lifecycle.ts). The age is jittered (±10 % of 10 min),
// a duration no other session has, and its timer is unref'd: Node kept the emptied list of
// that duration (~0.8 KB) for the rest of the ten minutes, so an upstream that ends its
// sessions often (a GOAWAY after each answer, a restart loop) left one per session. An
// upstream here closes its session after every answer, so each request dials a new one; Node's
// timer lists are counted in heap snapshots (helpers/timer-lists.ts), before and after.

import t from 'tap';
import { startOutboundToUpstream, defaultHandler, request } from '../helpers/outbound-fixture.js';
import { timerLists } from '../helpers/timer-lists.js';

const SESSIONS = 20;

// both codecs' pools in one test: a heap snapshot takes a second or two, two are enough
t.test('closed upstream sessions leave no timer lists behind (both codecs)', async (t) => {
  const outbounds = [];
  for (const codec of ['meshcar', 'node'] as const) {
    process.env.MESHCAR_TEST_H2_CODEC = codec;
    outbounds.push(
      await startOutboundToUpstream(t, {
        handler: (stream, headers, flags) => {
          // GOAWAY once this answer is out (Node lets go of stream.session before 'close'): the
          // next request needs a new session
          const session = stream.session;
          stream.once('close', () => session?.close());
          defaultHandler(stream, headers, flags);
        },
      }),
    );
    delete process.env.MESHCAR_TEST_H2_CODEC;
  }
  const round = async () => {
    const statuses: number[] = [];
    for (const { fx } of outbounds) for (let i = 0; i < SESSIONS; i++) statuses.push((await request(fx.port)).status);
    t.same(new Set(statuses), new Set([200]), 'every request answered');
  };
  await round(); // the pools' own timers are set up
  const before = await timerLists();
  await round();
  const after = await timerLists();
  for (const { upstream } of outbounds) t.equal(upstream.handshakes.length, 2 * SESSIONS, 'each request had a session of its own');
  // seen without it: one more per session, on either codec (40 and 39 for 40 sessions each);
  // with it, 0 on an idle machine and 5 in a CI run on a busy one (timers of other durations
  // still running at the snapshot), so the bound is a quarter of the sessions
  t.ok(after - before < (2 * SESSIONS) / 4, `${after - before} more timer lists after ${SESSIONS} sessions on each codec (${before} before)`);
});

// An inbound HTTP/2 session's maximum age (inbound.limits.maxSessionAge) ran on the wall clock:
// stepped back an hour (NTP correcting a host that ran ahead, a VM restored), every caller
// session was kept an hour past its age, and one stepped ahead retired them all at once. It
// counts running time now (src/inbound/connection-lifetime.ts); the certificate expiry stays a
// wall-clock instant. And a jittered age past setTimeout's longest wait retired sessions at once.
// A file of its own: it moves this process's Date, which the concurrent
// tests of connection-lifetime.test.ts read (test/helpers/movable-clock.ts).

import t from 'tap';
import { once } from 'node:events';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { DEFAULT_INBOUND_LIMITS } from '../../src/config/inbound-config.js';
import { movableClock } from '../helpers/movable-clock.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`the maximum age counts running time: a clock stepped back does not stretch it (${codec})`, async (t) => {
    const fx = await startInbound({ limits: { ...DEFAULT_INBOUND_LIMITS, maxSessionAgeMs: 1000 }, codec });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    t.equal((await h2Request(session, { ':path': '/' })).status, 200);
    const clock = movableClock();
    t.teardown(() => clock.restore());
    clock.offset.ms = -3_600_000;
    const openedAt = performance.now();
    const away = await Promise.race([once(session, 'goaway').then(() => performance.now() - openedAt), new Promise<undefined>((resolve) => setTimeout(resolve, 3000, undefined).unref())]);
    clock.restore();
    t.ok(away !== undefined, `GOAWAY within 3 s of a 1 s maximum age (after ${away === undefined ? 'none' : Math.round(away)} ms)`);
  });
}

// the age's own timer: jittered (±10%) past the config's 24 days, the wait passed setTimeout's
// 2^31-1 ms, which Node fires after 1 ms: a third of the sessions were retired at once
t.test('a maximum age of 24 days (the most) retires no session early', async (t) => {
  const fx = await startInbound({ limits: { ...DEFAULT_INBOUND_LIMITS, maxSessionAgeMs: 24 * 86_400_000 } });
  t.teardown(() => fx.close());
  const options = await fx.tlsOptions();
  const sessions = await Promise.all(Array.from({ length: 20 }, () => h2Connect(fx.port, options)));
  t.teardown(() => sessions.forEach((s) => s.destroy()));
  let goaways = 0;
  for (const session of sessions) session.once('goaway', () => goaways++);
  for (const session of sessions) t.equal((await h2Request(session, { ':path': '/' })).status, 200);
  // a PING round trip on each after its request: a GOAWAY sent at once has arrived by then
  await Promise.all(sessions.map((s) => new Promise<void>((resolve) => s.ping(() => resolve()))));
  t.equal(goaways, 0, 'no GOAWAY on any of 20 sessions');
});

// A drain waits for the app to go quiet toward the outbound (its last calls still get through)
// for at most drainTimeout, then drains the outbound with what is left of it. The deadline ran
// on the wall clock: stepped back an hour during the drain (NTP correcting a host that ran
// ahead), the wait went on for the hour while the app kept calling. Running time now. A real
// outbound and upstream over mutual TLS, an app calling every 20 ms; this process's Date moved.

import t from 'tap';
import { pino } from 'pino';
import { drainInOrder } from '../src/sidecar-drain.js';
import { request, startOutboundToUpstream } from './helpers/outbound-fixture.js';
import { movableClock } from './helpers/movable-clock.js';

t.test('the drain ends at its timeout while the app keeps calling, the clock stepped back meanwhile', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  let calling = true;
  const calls = (async () => {
    // bounded: 10 s of calls at most
    for (let i = 0; calling && i < 500; i++) {
      await request(fx.port).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const clock = movableClock();
  t.teardown(() => clock.restore());
  const started = performance.now();
  const drained = drainInOrder({ cluster: undefined, inbound: () => undefined, outbound: () => fx.outbound }, 600, pino({ level: 'silent' }));
  setTimeout(() => (clock.offset.ms = -3_600_000), 100);
  const ended = await Promise.race([drained.then(() => performance.now() - started), new Promise<undefined>((resolve) => setTimeout(resolve, 4_000, undefined))]);
  calling = false;
  clock.restore();
  await calls;
  t.ok(ended !== undefined && ended < 2_000, `the drain of 600 ms ended in ${ended === undefined ? 'more than 4000' : Math.round(ended)} ms`);
});

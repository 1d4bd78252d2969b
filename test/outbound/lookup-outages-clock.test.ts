// The reminder that a name's lookups still fail (outbound/lookup-outages.ts) is spaced by the
// running time: with the wall clock stepped back an hour (NTP, a VM restored), the reminders
// stopped for that hour and the lines gave negative durations. The wall clock is moved in this
// process (helpers/movable-clock.ts), as a host's step moves it under a running sidecar.

import t from 'tap';
import { LookupOutages } from '../../src/outbound/lookup-outages.js';
import { memoryLogger } from '../helpers/ca.js';
import { movableClock, waitFor } from '../helpers/movable-clock.js';

t.test('a wall clock stepped back an hour: the reminder still comes after repeatMs, with sane durations', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const outages = new LookupOutages(memoryLogger(lines), 100);
  const clock = movableClock();
  t.teardown(() => clock.restore());
  outages.failed('payments.internal', 'ENOTFOUND');
  t.equal(lines.length, 1, 'the first failure is logged');
  clock.offset.ms = -3_600_000;
  const reminded = await waitFor(() => {
    outages.failed('payments.internal', 'ENOTFOUND');
    return lines.length === 2;
  }, 3000);
  t.ok(reminded, 'a reminder within 3 s (repeatMs 100 ms), the clock stepped back');
  t.ok(Number(lines[1]?.sinceSeconds) >= 0, `sinceSeconds is not negative: ${String(lines[1]?.sinceSeconds)}`);
  outages.resolved('payments.internal');
  t.ok(Number(lines[2]?.afterSeconds) >= 0, `afterSeconds is not negative: ${String(lines[2]?.afterSeconds)}`);
  t.ok(Number(lines[2]?.afterSeconds) < 60, 'nor an hour');
});

// The crash-loop bound for workers (src/workers/restart-policy.ts): a dead worker is restarted
// at once up to 5 times in any minute; the next waits until the oldest restart is a minute old.
// And the merge of the workers' /endpoints inventories (src/workers/merge-endpoints.ts).

import t from 'tap';
import { RestartPolicy, MAX_RESTARTS, WINDOW_MS } from '../../src/workers/restart-policy.js';
import { mergeEndpoints } from '../../src/workers/merge-endpoints.js';

t.test('five restarts a minute at once, then each waits for the window', async (t) => {
  const policy = new RestartPolicy();
  const start = 1_000_000;
  for (let i = 0; i < MAX_RESTARTS; i++) t.equal(policy.next(start + i * 1000), 0, `restart ${i + 1}: now`);
  t.equal(policy.recent(start + 4000), MAX_RESTARTS);
  t.equal(policy.next(start + 5000), WINDOW_MS - 5000, 'the sixth waits until the first is a minute old');
  t.equal(policy.next(start + 6000), WINDOW_MS + 1000 - 6000, 'the seventh until the second is');
  t.equal(policy.next(start + 10 * WINDOW_MS), 0, 'after a quiet spell: at once again');
});

t.test('on the running clock: a wall clock stepped back does not stretch the crash-loop wait', async (t) => {
  const policy = new RestartPolicy();
  for (let i = 0; i < MAX_RESTARTS; i++) t.equal(policy.next(), 0, `restart ${i + 1}: now`);
  // the host's clock stepped back 30 minutes (NTP, a VM resumed): Date.now() is not the clock
  const wall = Date.now;
  const stepped = wall() - 30 * 60_000;
  Date.now = () => stepped;
  t.teardown(() => (Date.now = wall));
  const delay = policy.next();
  t.ok(delay <= WINDOW_MS, `the sixth waits ${delay} ms, at most a minute (31 min on the wall clock)`);
  t.equal(policy.recent(), MAX_RESTARTS, 'and the five are counted as recent');
});

t.test('the workers\' inventories add up row by row', async (t) => {
  const row = (count: number, lastSeen: string, responses: string[]) => ({
    endpoints: [{ direction: 'inbound' as const, peer: 'spiffe://mesh.local/svc/a', method: 'GET', route: '/x', count, errors: 1, lastSeen }],
    discovery: [{ direction: 'inbound' as const, peer: 'spiffe://mesh.local/svc/a', method: 'GET', route: '/x', count, responses, documented: undefined }],
  });
  const merged = mergeEndpoints([row(2, '2026-01-01T00:00:01.000Z', ['200']), row(3, '2026-01-01T00:00:02.000Z', ['404', '2XX', '200'])]);
  t.same(merged.endpoints, [{ direction: 'inbound', peer: 'spiffe://mesh.local/svc/a', method: 'GET', route: '/x', count: 5, errors: 2, lastSeen: '2026-01-01T00:00:02.000Z' }]);
  t.same(merged.discovery.map((r) => [r.count, r.responses]), [[5, ['200', '2XX', '404']]]);
});

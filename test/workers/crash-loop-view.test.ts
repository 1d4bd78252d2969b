// GET /workers while a lost worker's replacement waits out the crash-loop delay (five restarts
// a minute at once, then each waits: src/workers/restart-policy.ts): the slot is listed under
// `waiting`, with when the replacement starts and why, where it used to be missing without a word.

import t from 'tap';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';
import { MAX_RESTARTS } from '../../src/workers/restart-policy.js';

const fx = workersFixture(t);

t.test('a worker waiting out the crash-loop delay is listed, with when it comes back', { timeout: 60_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const bothListening = async () => {
    const view = await workersOf(sidecar);
    return view.workers.length === 2 && view.workers.every((w) => w.listening);
  };
  for (let i = 1; i <= MAX_RESTARTS; i++) {
    const [one] = (await workersOf(sidecar)).workers;
    process.kill(one?.pid as number, 'SIGKILL');
    await waitFor(async () => (await workersOf(sidecar)).workers.every((w) => w.pid !== one?.pid) && (await bothListening()), 15_000, `replacement ${i} listening`, sidecar.process);
  }
  const before = await workersOf(sidecar);
  t.notOk('waiting' in before, 'nothing waits while restarts go at once');

  const [victim] = before.workers;
  const killedAt = Date.now();
  process.kill(victim?.pid as number, 'SIGKILL');
  await waitFor(async () => (await workersOf(sidecar)).workers.length === 1, 10_000, 'the sixth loss seen', sidecar.process);
  const view = (await workersOf(sidecar)) as Awaited<ReturnType<typeof workersOf>> & { waiting?: Array<{ restartsAt: string; cause: string }> };
  t.equal(view.workers.length, 1, 'one worker runs');
  t.equal(view.waiting?.length, 1, 'the other slot is listed as waiting');
  t.equal(view.waiting?.[0]?.cause, 'crash', 'with why it was lost');
  const startsIn = Date.parse(view.waiting?.[0]?.restartsAt ?? '') - killedAt;
  t.ok(startsIn > 20_000 && startsIn <= 61_000, `and when its replacement starts (in ${Math.round(startsIn / 1000)} s)`);
  t.equal(view.restarts, MAX_RESTARTS + 1, 'every loss counted');
});

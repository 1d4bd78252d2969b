// SIGTERM while a sidecar of `workers: 2` is still starting but one worker already listens and
// serves (worker 2 stopped as it loads: test/fixtures/slow-second-worker.cjs, standing for a
// worker slow to start): the request in flight on the listening worker finishes (200), as in a
// drain after the start, and the primary exits 0 within drainTimeout. It was cut ('closed
// before an answer'): a stop during start-up killed every worker at once.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { launchSidecar, waitFor } from '../helpers/mesh.js';
import { heldRequest, workersFixture } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('SIGTERM during the start: the listening worker finishes its requests', { timeout: 30_000 }, async (t) => {
  const slow = fileURLToPath(new URL('../fixtures/slow-second-worker.cjs', import.meta.url));
  const launched = await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '3s', extraYaml: 'workers: 2', nodeArgs: ['--require', slow] });
  t.teardown(() => launched.stop('SIGKILL'));
  const listening = await launched.process.waitFor((l) => l.msg === 'worker listening' && l.worker === 1, 15_000);
  const port = Number((listening.inbound as { port: number }).port);
  const held = heldRequest(fx.probe, port, 'while-starting');
  // at the app: in flight through worker 1
  await waitFor(async () => fx.app.seen.some((h) => h['x-request-id'] === 'while-starting'), 10_000, 'the request at the app', launched.process);
  const started = Date.now();
  const exit = launched.stop('SIGTERM');
  await launched.process.waitFor((l) => l.msg === 'stop asked for while starting', 5_000);
  fx.app.release('while-starting');
  t.equal(await held, 200, 'the request in flight finished');
  t.equal(await exit, 0, 'exit 0');
  const took = Date.now() - started;
  t.ok(took < 4_000, `exited in ${took} ms, within the 3 s drainTimeout (and a margin)`);
});

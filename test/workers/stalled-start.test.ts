// Workers stopped while they start (workers: 2) are replaced, for real: a sidecar whose worker 1
// stops once it has said hello and got its config, and whose worker 2 stops as it loads, before
// its hello (test/fixtures/stalled-start-worker.cjs; SIGSTOP stands for a worker wedged then).
// Only listening workers were pinged and a start was not timed, so such a worker stayed
// "starting" for good: the sidecar never got ready (a replacement so stopped kept /ready at 503
// for good). Now a worker is pinged from its hello on (worker 1 misses two and is killed) and one
// that says no hello within 10 s is killed (worker 2); both are replaced, counted as restarts,
// and the sidecar is ready on their replacements.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { launchSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('workers stopped while they start are replaced; the sidecar gets ready', { timeout: 60_000 }, async (t) => {
  const stalled = fileURLToPath(new URL('../fixtures/stalled-start-worker.cjs', import.meta.url));
  const launched = await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2', nodeArgs: ['--require', stalled] });
  t.teardown(() => launched.stop('SIGKILL'));
  const started = Date.now();
  // the hello timeout (10 s) and a check interval (3 s), then the replacement's start
  const sidecar = await launched.ready(30_000);
  const took = Date.now() - started;
  t.ok(took < 25_000, `ready in ${took} ms`);
  const view = await workersOf(sidecar);
  t.same(view.workers.map((w) => [w.id, w.listening]).sort(), [[3, true], [4, true]], 'the replacements listen');
  t.equal(view.restarts, 2, 'two restarts counted');
  const said = (msg: string) => sidecar.process.lines.some((l) => l.msg === msg);
  t.ok(said('restarting worker 1: it did not answer 2 health checks in a row (stopped or stuck)'), 'worker 1: stopped after its hello, missed two pings');
  t.ok(said('restarting worker 2: it did not say hello within 10 s of its start (stopped or stuck)'), 'worker 2: stopped before its hello');
  for (let i = 0; i < 4; i++) t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, 'served');
});

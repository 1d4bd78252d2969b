// Workers stopped while they start (workers: 2) are replaced, for real: a sidecar whose worker 1
// stops once it has said hello and got its config, and whose worker 2 stops as it loads, before
// its hello (test/fixtures/stalled-start-worker.cjs; SIGSTOP stands for a worker wedged then).
// Only listening workers were pinged and a start was not timed, so such a worker stayed
// "starting" for good: the sidecar never got ready (a replacement so stopped kept /ready at 503
// for good). Now a worker is pinged from its hello on (worker 1 misses two and is killed) and one
// that says no hello within 10 s is killed (worker 2); both are replaced, counted as restarts,
// and the sidecar is ready on their replacements. A SIGTERM while a replacement is stopped
// before its hello: the health checks go on through the drain and kill it at its hello timeout
// (not at the drain timeout), said as what it is: it had no config and served nothing, so no
// requests of its were cut.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { launchSidecar, waitFor } from '../helpers/mesh.js';
import { probeRequest, terminated, workersFixture, workersOf } from '../helpers/workers.js';

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

t.test('SIGTERM while a replacement is stopped before its hello: killed during the drain, no requests said cut', { timeout: 60_000 }, async (t) => {
  const stalled = fileURLToPath(new URL('../fixtures/stalled-replacement-worker.cjs', import.meta.url));
  const launched = await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '30s', extraYaml: 'workers: 2', nodeArgs: ['--require', stalled] });
  t.teardown(() => launched.stop('SIGKILL'));
  const sidecar = await launched.ready(30_000);
  const first = (await workersOf(sidecar)).workers.find((w) => w.id === 1)?.pid as number;
  process.kill(first, 'SIGKILL');
  // its replacement (worker 3) is forked and stops as it loads
  await waitFor(async () => (await workersOf(sidecar)).workers.some((w) => w.id === 3), 10_000, 'worker 3 forked', sidecar.process);
  const { code, took } = await terminated(sidecar);
  t.equal(code, 0, 'exit 0');
  t.ok(took < 20_000, `exited in ${took} ms, not at the 30 s drain timeout`);
  t.ok(sidecar.process.lines.some((l) => l.msg === 'killing worker 3 during the drain: it did not say hello within 10 s of its start (stopped or stuck)'), 'worker 3 killed at its hello timeout; nothing said cut (it had no config)');
});

// A stuck worker (workers: 2; SIGSTOP stands for a worker wedged in a loop or a stalled
// page-in), for real: a sidecar with two workers, real mTLS requests.
// - SIGTERM with a stopped worker: the whole shutdown fits in drainTimeout (2 s): the workers
//   are told to drain within it less their exit grace, the stopped one is killed at 2 s and the
//   primary exits 0 (it took drainTimeout + 5 s: the stragglers were killed only after a grace
//   beyond the timeout, past what terminationGracePeriodSeconds is sized from); that kill is not
//   logged as a worker dying during the drain (drain-exits.test.ts); with a 20 s drainTimeout the
//   health checks, once a second through the drain, kill it within about 3 s (it held the shared
//   listener open, handed new connections nobody answered, to the drain timeout);
// - a stopped worker is replaced: it misses two of the primary's health checks (every 3 s) and is
//   killed and restarted, counted in the restarts; then /ready is 200 with two workers listening
//   and every new connection is served (it used to stay until the next reload, /ready 200,
//   node:cluster handing it its share of the connections, which hung).

import t from 'tap';
import { startSidecar, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, terminated, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** Stops the first worker (SIGSTOP); killed at the test's end whatever happened. */
async function stopOne(t: { teardown(fn: () => void): void }, sidecar: RunningSidecar): Promise<number> {
  const pid = (await workersOf(sidecar)).workers[0]?.pid as number;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  return pid;
}

// Each test runs its own sidecar; the second spends most of its time waiting for two missed
// health checks, so the first runs within that wait.
t.jobs = 2;

t.test('SIGTERM with a stopped worker: exit 0 within drainTimeout', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '2s', extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  for (let i = 0; i < 4; i++) t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200);
  await stopOne(t, sidecar);
  const { code, took } = await terminated(sidecar);
  t.equal(code, 0, 'exit 0');
  // the fault took the drain timeout and 5 s more; the margin covers the kills and exits on a busy host
  t.ok(took < 5_000, `exited in ${took} ms: the 2 s drain timeout bounds the shutdown`);
  t.ok(sidecar.process.lines.some((l) => l.msg === 'worker still running after the drain timeout; killing it'), 'the stopped worker was killed at the drain timeout');
  // that kill is the primary's own, said above: not taken for a worker dying during the drain
  t.notOk(sidecar.process.lines.some((l) => String(l.msg).startsWith('worker exited during the drain')), 'not said to have died during the drain');
});

// Health checks go on through the drain, once a second: a stopped worker never closes its
// listeners, so node:cluster's shared listener stayed open to the drain timeout (20 s here),
// handing it new connections that nobody answered. Now it is killed after two missed checks and
// the sidecar is gone in seconds.
t.test('SIGTERM with a stopped worker and a long drainTimeout: it is killed within seconds', { timeout: 40_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '20s', extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await stopOne(t, sidecar);
  const { code, took } = await terminated(sidecar);
  t.equal(code, 0, 'exit 0');
  t.ok(took < 6_000, `exited in ${took} ms, not at the 20 s drain timeout`);
  t.ok(sidecar.process.lines.some((l) => typeof l.msg === 'string' && /^killing worker \d+ during the drain: it did not answer 2 health checks in a row/.test(l.msg)), 'the log says which worker was killed and why');
  t.notOk(sidecar.process.lines.some((l) => l.msg === 'worker still running after the drain timeout; killing it'), 'not left to the drain timeout');
});

t.test('a stopped worker is replaced after two missed health checks', { timeout: 40_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const stopped = await stopOne(t, sidecar);
  const started = Date.now();
  // two misses: at most two intervals and two ask timeouts (3 + 3 + 2 s), and the replacement's start
  await waitFor(async () => {
    const view = await workersOf(sidecar);
    return view.restarts === 1 && view.workers.length === 2 && !view.workers.some((w) => w.pid === stopped) && view.workers.every((w) => w.listening);
  }, 20_000, 'the stopped worker replaced', sidecar.process);
  t.pass(`replaced after ${Date.now() - started} ms`);
  t.ok(sidecar.process.lines.some((l) => typeof l.msg === 'string' && /^restarting worker \d+: it did not answer 2 health checks in a row/.test(l.msg)), 'the log says why');
  t.equal((await sidecar.admin('/ready')).status, 200, '/ready: 200 again');
  const results = await Promise.all(Array.from({ length: 6 }, () => probeRequest(sidecar.inboundPort, fx.probe)));
  t.same(results.map((r) => r.status), [200, 200, 200, 200, 200, 200], 'every new connection is served');
  t.equal(new Set((await workersOf(sidecar)).workers.map((w) => w.pid)).size, 2, 'two workers');
});

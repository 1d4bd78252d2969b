// A stuck worker (workers: 2; SIGSTOP stands for a worker wedged in a loop or a stalled
// page-in), for real: a sidecar with two workers, real mTLS requests.
// - SIGTERM with a stopped worker: the whole shutdown fits in drainTimeout (2 s): the workers
//   are told to drain within it less their exit grace, the stopped one is killed at 2 s and the
//   primary exits 0 (it took drainTimeout + 5 s: the stragglers were killed only after a grace
//   beyond the timeout, past what terminationGracePeriodSeconds is sized from).

import t from 'tap';
import { startSidecar, type RunningSidecar } from '../helpers/mesh.js';
import { probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

/** Stops the first worker (SIGSTOP); killed at the test's end whatever happened. */
async function stopOne(t: Tap.Test, sidecar: RunningSidecar): Promise<number> {
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

t.test('SIGTERM with a stopped worker: exit 0 within drainTimeout', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '2s', extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  for (let i = 0; i < 4; i++) t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200);
  await stopOne(t, sidecar);
  const started = Date.now();
  sidecar.process.child.kill('SIGTERM');
  const code = await sidecar.process.exited();
  const took = Date.now() - started;
  t.equal(code, 0, 'exit 0');
  t.ok(took < 2_700, `exited in ${took} ms: the 2 s drain timeout bounds the shutdown`);
  t.ok(sidecar.process.lines.some((l) => l.msg === 'worker still running after the drain timeout; killing it'), 'the stopped worker was killed at the drain timeout');
});

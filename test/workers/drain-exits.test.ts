// A worker that dies during the drain (workers: 2), for real: a sidecar with two workers, real
// mTLS requests held by the app. SIGTERM, then one worker is killed from outside while its
// requests are still in flight: those are cut, the other worker's finish, the primary exits 0
// and says which worker died and that its requests were cut (it said nothing: the log read as
// a clean drain). The worker that drained and exited 0 is not named.

import t from 'tap';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { heldRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

const CUT = /^worker exited during the drain \(signal SIGKILL\); the requests it had in flight were cut$/;

t.test('a worker killed during the drain: its requests cut and said so, the others finish, exit 0', { timeout: 30_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '10s', extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const [one, two] = (await workersOf(sidecar)).workers;
  // four connections, one after the other: the primary hands them to the two workers in turn,
  // so both hold requests
  const ids = [0, 1, 2, 3].map((i) => `drain-exit-${i}`);
  const answers: Array<Promise<number | string>> = [];
  for (const id of ids) {
    answers.push(heldRequest(fx.probe, sidecar.inboundPort, id));
    await waitFor(async () => fx.app.seen.some((h) => h['x-request-id'] === id), 5_000, `${id} at the app`, sidecar.process);
  }

  sidecar.process.child.kill('SIGTERM');
  await sidecar.process.waitFor((l) => l.msg === 'draining', 5_000);
  process.kill(one?.pid as number, 'SIGKILL');
  const line = await sidecar.process.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('worker exited during the drain'), 5_000).catch(() => undefined);
  t.match(String(line?.msg), CUT, `said: ${String(line?.msg)}`);
  t.equal(line?.worker, one?.id, 'naming the killed worker');
  for (const id of ids) fx.app.release(id);
  const results = await Promise.all(answers);
  t.equal(results.filter((r) => r === 200).length, 2, `the other worker's two requests finish, the killed one's are cut (${results.join(', ')})`);
  t.equal(await sidecar.process.exited(), 0, 'exit 0 once drained');
  t.same(sidecar.process.lines.filter((l) => CUT.test(String(l.msg))).map((l) => l.worker), [one?.id], `only the killed worker named, not worker ${String(two?.id)} that drained`);
});

// meshcar_identity_bundle_roots is the minimum over the workers (a root change reaching them at
// different times shows as the slowest one's count). A worker answers the primary's metrics ask
// from its hello on, and before it has built its identity its gauge reads prom-client's 0:
// /metrics said the sidecar trusted 0 roots while a replacement worker waited for its config,
// seconds when a reload round was deciding. A worker now leaves the family out until it is set.
// Here the round is held by a stopped worker (SIGSTOP) while the other is killed: its
// replacement says hello and waits for the round's outcome before it gets its config.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { httpPost, metricValue, startSidecar, waitFor } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test("a replacement worker waiting for its config does not pull the bundle's root count to 0", { timeout: 60_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening), 15_000, 'both workers listening', sidecar.process);
  const roots = async () => metricValue((await sidecar.admin('/metrics')).body, 'meshcar_identity_bundle_roots');
  t.equal(await roots(), 1, 'one root, before');
  const [held, killed] = (await workersOf(sidecar)).workers;
  const heldPid = held?.pid as number;
  await writeFile(sidecar.configFile, (await readFile(sidecar.configFile, 'utf8')).replace('  timeout: 5s\n', '  timeout: 6s\n'));
  process.kill(heldPid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(heldPid, 'SIGCONT');
    } catch {
      // gone already
    }
  });
  const outcome = httpPost(sidecar.adminPort, '/reload');
  const lines = sidecar.process.lines;
  await waitFor(async () => lines.some((l) => l.worker === killed?.id && String(l.msg).startsWith('config generation 2 prepared')), 10_000, 'the round in flight (the other worker prepared)', sidecar.process);
  process.kill(killed?.pid as number, 'SIGKILL');
  // its replacement has said hello (listed) and waits for the round to decide
  await waitFor(async () => (await workersOf(sidecar)).workers.some((w) => w.pid !== heldPid && w.pid !== killed?.pid), 10_000, 'the replacement said hello', sidecar.process);
  const during = await roots();
  t.not(during, 0, `not 0 roots while the replacement starts (read ${String(during)})`);
  process.kill(heldPid, 'SIGCONT');
  await outcome;
  await waitFor(async () => (await roots()) === 1, 10_000, 'one root once the replacement is configured', sidecar.process);
  t.pass('one root again');
});

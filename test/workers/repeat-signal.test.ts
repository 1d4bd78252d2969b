// A second SIGTERM (or SIGINT) during the drain does not end the sidecar: the drain goes on,
// requests in flight get their answers and the process exits 0, with one log line saying the
// signal was ignored (Envoy and Linkerd finish their drain the same way). It used to take the
// signal's default action: exit by signal, in-flight requests cut. For workers 1 and 2.

import t from 'tap';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { heldRequest, workersFixture } from '../helpers/workers.js';

const fx = workersFixture(t);

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}: a repeated SIGTERM and a SIGINT during the drain are ignored; in-flight requests finish; exit 0`, { timeout: 30_000 }, async (t) => {
    const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, drainTimeout: '10s', extraYaml: `workers: ${workers}` });
    t.teardown(() => sidecar.stop('SIGKILL'));
    const ids = [0, 1].map((i) => `repeat-${workers}-${i}`);
    const answers = ids.map((id) => heldRequest(fx.probe, sidecar.inboundPort, id));
    const arrived = () => ids.every((id) => fx.app.seen.some((h) => h['x-request-id'] === id));
    await waitFor(async () => arrived(), 5_000, 'both requests at the app', sidecar.process);

    sidecar.process.child.kill('SIGTERM');
    await sidecar.process.waitFor((l) => l.msg === 'draining', 5_000);
    sidecar.process.child.kill('SIGTERM');
    sidecar.process.child.kill('SIGINT');
    await sidecar.process.waitFor((l) => l.msg === 'already draining; the signal is ignored until the drain ends', 5_000);
    t.equal(sidecar.process.child.exitCode ?? sidecar.process.child.signalCode, null, 'still running after the repeated signals');
    for (const id of ids) fx.app.release(id);
    t.same(await Promise.all(answers), [200, 200], 'the requests in flight get their answers');
    t.equal(await sidecar.process.exited(), 0, 'exit 0 once drained');
    t.equal(sidecar.process.lines.filter((l) => l.msg === 'already draining; the signal is ignored until the drain ends').length, 1, 'said once');
  });
}

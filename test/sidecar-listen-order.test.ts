// A sidecar binds its inbound only once its outbound is bound. The outbound's listen may wait
// up to 2 s for an upstream's first DNS answer; bound side by side, the inbound served callers
// meanwhile, and a SIGTERM then (the start not over) stopped the sidecar rather than drained
// it: a request the app was running was cut (the drain hunt). Real sidecar process, its
// resolver slowed by a preload (test/helpers/slow-dns.cjs).

import t from 'tap';
import { launchSidecar, startMeshCa, type MeshCa } from './helpers/mesh.js';

let ca: MeshCa;
t.before(async () => {
  ca = await startMeshCa(t.testdir());
});
t.teardown(() => ca?.stop());

t.test('the inbound listens only after the outbound, however long its first lookup takes', async (t) => {
  const started = Date.now();
  const sidecar = await launchSidecar(ca, {
    service: 'orders',
    inbound: { app: 'http://127.0.0.1:9' },
    nodeArgs: ['--require', new URL('./helpers/slow-dns.cjs', import.meta.url).pathname],
    upstreams: [{ name: 'payments', endpoints: ['payments.slow:443'], identity: 'spiffe://mesh.local/svc/payments' }],
  });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const ready = await sidecar.ready(20_000);
  t.ok(ready.inboundPort > 0 && ready.outboundPort > 0, 'both sides listen');
  const order = sidecar.process.lines.map((line) => line.msg).filter((msg) => msg === 'inbound listening' || msg === 'outbound listening');
  t.same(order, ['outbound listening', 'inbound listening'], `the outbound first (ready after ${Date.now() - started} ms, its lookup stalled)`);
});

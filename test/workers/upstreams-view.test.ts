// GET /upstreams with workers: 2, for real: an upstream sidecar before the echo app, a frontend
// sidecar with two workers whose outbound reaches it. Each worker has its own pools (its own
// lookups, sessions, ejections), so the primary asks every worker and lists their views side
// by side, by worker id; a worker that does not answer in time (SIGSTOP stands for a wedged
// one) is listed as unresponsive, as GET /workers lists it, and the others' views still come.

import t from 'tap';
import { startSidecar, waitFor } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

interface WorkerUpstreams {
  workers: Array<{ id: number; unresponsive?: boolean; starting?: boolean; upstreams?: Array<{ name: string; endpoints: string[]; addresses: Array<{ address: string; state: string; sessions: number; streams: number }> }> }>;
}

t.test("workers: 2: both workers' views, then a stopped one marked unresponsive", { timeout: 40_000 }, async (t) => {
  const orders = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` } });
  t.teardown(() => orders.stop('SIGKILL'));
  const endpoint = `127.0.0.1:${orders.inboundPort}`;
  const frontend = await startSidecar(fx.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [endpoint], identity: 'spiffe://mesh.local/svc/orders' }], extraYaml: 'workers: 2' });
  t.teardown(() => frontend.stop('SIGKILL'));
  // each new app connection goes to the next worker: a few requests reach both
  for (let i = 0; i < 4; i++) t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders', connection: 'close' } })).status, 200, `request ${i + 1} served`);

  const res = await frontend.admin('/upstreams');
  t.equal(res.status, 200, res.body.slice(0, 200));
  const view = JSON.parse(res.body) as WorkerUpstreams;
  t.equal(view.workers.length, 2, 'two workers listed');
  t.same(view.workers.map((w) => w.id), [...view.workers.map((w) => w.id)].sort((a, b) => a - b), 'by worker id');
  for (const w of view.workers) {
    const o = w.upstreams?.find((u) => u.name === 'orders');
    t.same(o?.endpoints, [endpoint], `worker ${w.id}: orders, its endpoint as written`);
    t.same(o?.addresses.map((a) => [a.address, a.state]), [[endpoint, 'ok']], `worker ${w.id}: its address, ok`);
  }
  const sessions = view.workers.map((w) => w.upstreams?.[0]?.addresses[0]?.sessions ?? 0);
  t.ok(sessions.every((n) => n === 1), `each worker has its own session to orders (${sessions.join(', ')})`);

  // a wedged worker: the view is still answered, within the view's 2 s deadline, with it marked
  const [first] = (await workersOf(frontend)).workers;
  process.kill(first?.pid as number, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(first?.pid as number, 'SIGKILL');
    } catch {
      // gone already (replaced after missed health checks)
    }
  });
  const started = Date.now();
  const stuck = await frontend.admin('/upstreams');
  const took = Date.now() - started;
  t.equal(stuck.status, 200, 'answered with a worker stopped');
  const marked = JSON.parse(stuck.body) as WorkerUpstreams;
  t.same(marked.workers.find((w) => w.id === first?.id), { id: first?.id, unresponsive: true }, 'the stopped worker: unresponsive, no view');
  t.ok(marked.workers.find((w) => w.id !== first?.id)?.upstreams?.some((u) => u.name === 'orders'), "the other worker's view");
  t.ok(took < 4_000, `within the view deadline (${took} ms)`);
  process.kill(first?.pid as number, 'SIGCONT');
  await waitFor(async () => (await frontend.admin('/ready')).status === 200, 10_000, 'ready again', frontend.process);
});

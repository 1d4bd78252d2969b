// `workers: 2` with `inbound.listen: 127.0.0.1:0`: node:cluster shares one socket per listen
// address among the workers and closes it when its last worker exits. Every worker asked for
// port 0, so once both had died at once (or in a crash loop) the replacements bound a new
// port: the primary logged "a worker listens on other addresses than the first one", /ready
// said 200, and the port announced at start refused every connection (a hunt). The primary
// now picks the port before it forks, and every worker binds it by number
// (src/workers/shared-ports.ts): both workers killed together, the same port serves again.
// The primary also holds each picked port until a worker asks node:cluster to listen on it: let
// go at once, it was free for the workers' whole start, and a CI run lost a start to a socket
// that took it meanwhile (EADDRINUSE, listen_failed). Under node:cluster's other scheduling
// policy (none: each worker gets the listening handle) the primary binds in the same turn as the
// worker's ask: the hold must be let go before that.

import t from 'tap';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { launchSidecar, startSidecar, waitFor } from '../helpers/mesh.js';
import { listeningPortsOf, probeRequest, workersFixture, workersOf } from '../helpers/workers.js';

const fx = workersFixture(t);

t.test('workers: 2, listen port 0: both workers killed at once, their replacements serve the port announced at start', { timeout: 60_000 }, async (t) => {
  const sidecar = await startSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, extraYaml: 'workers: 2' });
  t.teardown(() => sidecar.stop('SIGKILL'));
  const proc = sidecar.process;
  if (!proc) throw new Error('the sidecar runs as a process of its own');
  t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, 'the announced port serves');
  const first = (await workersOf(sidecar)).workers;
  t.equal(first.length, 2, 'two workers');
  for (const worker of first) process.kill(worker.pid, 'SIGKILL');
  const allNew = async () => {
    if ((await sidecar.admin('/ready')).status !== 200) return false;
    const now = (await workersOf(sidecar)).workers;
    return now.length === 2 && now.every((w) => w.listening && !first.some((old) => old.pid === w.pid));
  };
  await waitFor(allNew, 20_000, 'two replacements listening, /ready 200', proc);
  const statuses = await Promise.all([0, 1, 2, 3].map(async () => (await probeRequest(sidecar.inboundPort, fx.probe)).status));
  t.same(statuses, [200, 200, 200, 200], 'the port announced at start serves again, through either replacement');
  t.notOk(proc.lines.some((l) => l.msg === 'a worker listens on other addresses than the first one'), 'every worker on the same address');
});

/** Whether a server of this process could bind 127.0.0.1:`port` now (it is let go at once). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

for (const policy of ['rr', 'none'] as const) {
  t.test(`workers: 2, listen port 0, NODE_CLUSTER_SCHED_POLICY=${policy}: the primary holds the picked ports until the workers bind them`, { timeout: 60_000 }, async (t) => {
    const gated = fileURLToPath(new URL('../fixtures/gated-start-worker.cjs', import.meta.url));
    const upstreams = [{ name: 'payments', endpoints: [`127.0.0.1:${fx.app.port}`], identity: 'spiffe://mesh.local/svc/payments' }];
    const launched = await launchSidecar(fx.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${fx.app.port}` }, upstreams, extraYaml: 'workers: 2', nodeArgs: ['--require', gated], env: { NODE_CLUSTER_SCHED_POLICY: policy } });
    t.teardown(() => launched.stop('SIGKILL'));
    const proc = launched.process;
    if (!proc) throw new Error('the sidecar runs as a process of its own');
    // both workers wait at their load: the primary listens on its admin port and on the two it picked
    let held: number[] = [];
    const picked = async () => {
      held = (await listeningPortsOf(proc.child.pid as number)).filter((port) => port !== launched.adminPort);
      return held.length === 2;
    };
    await waitFor(picked, 5_000, 'the primary listening on two picked ports while no worker has started', proc);
    t.same(await Promise.all(held.map(bindable)), [false, false], `nothing else can bind them meanwhile (${held.join(', ')})`);
    await writeFile(`${launched.configFile}.workers-gate`, '');
    const sidecar = await launched.ready(30_000);
    t.same([sidecar.inboundPort, sidecar.outboundPort].sort((a, b) => a - b), held, 'the workers listen on the ports held for them');
    t.equal((await probeRequest(sidecar.inboundPort, fx.probe)).status, 200, 'the inbound serves');
  });
}

// Shutdown as an orchestrator does it (SIGTERM): /ready turns 503, listeners stop accepting,
// in-flight requests finish, the process exits 0; the outbound side keeps serving its app
// while it drains.

import t from 'tap';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMeshCa, startSidecar, httpGet, type MeshCa } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';

let ca: MeshCa;
let app: TestApp;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startEchoApp();
});
t.teardown(async () => {
  await ca?.stop();
  await app?.close();
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

t.test('inbound: in-flight requests finish, new connections are refused, exit 0', async (t) => {
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}`, timeout: '10s' }, drainTimeout: '8s' });
  const frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', timeout: '10s' }] });
  t.teardown(() => Promise.all([frontend.stop(), orders.stop()]));
  t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status, 200, 'the session is up');

  const slow = request(frontend.outboundPort, { path: '/slow', headers: { host: 'orders' } });
  await sleep(300);
  const exited = orders.process.exited();
  orders.process.child.kill('SIGTERM');
  await sleep(200);
  const ready = await orders.admin('/ready').catch(() => ({ status: 0, body: '' }));
  t.equal(ready.status, 503, '/ready says 503 while draining');
  t.ok(await refused(orders.inboundPort), 'the inbound listener no longer accepts');
  const answer = await slow;
  t.equal(answer.status, 200, 'the in-flight request finished');
  t.equal(answer.body.toString(), 'late');
  t.equal(await exited, 0, 'exit 0 after draining');
});

t.test('outbound keeps serving the app while the sidecar drains', async (t) => {
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` } });
  const frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], drainTimeout: '6s' });
  t.teardown(() => Promise.all([frontend.stop(), orders.stop()]));
  const exited = frontend.process.exited();
  frontend.process.child.kill('SIGTERM');
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    statuses.push((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status);
    await sleep(150);
  }
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'calls made after SIGTERM still succeed');
  t.equal((await httpGet(frontend.adminPort, '/ready').catch(() => ({ status: 0 }))).status, 503);
  const started = Date.now();
  t.equal(await exited, 0, 'exits once the app has gone quiet');
  t.ok(Date.now() - started < 5000, 'well before the drain timeout');
});

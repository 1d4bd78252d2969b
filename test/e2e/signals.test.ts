// A real `meshcar run` process as a terminal or an orchestrator drives it: SIGINT (Ctrl-C)
// drains like SIGTERM (the request in flight is answered, the process exits 0), and /ready
// answers 503 "starting" while the sidecar cannot reach its CA yet, then 200 once it can.

import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { launchSidecar, startMeshCa, startSidecar, type MeshCa } from '../helpers/mesh.js';
import { startTcpGate } from '../helpers/tcp-gate.js';

let ca: MeshCa;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
});
t.teardown(() => ca?.stop());

/** An app that holds every request until the test answers it. */
async function holdingApp() {
  const held: http.ServerResponse[] = [];
  const arrived: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    held.push(res);
    for (const wake of arrived.splice(0)) wake();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    held,
    /** Resolves once a request is being held. */
    waitForRequest: () => (held.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => arrived.push(resolve))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

t.test('SIGINT drains: the request in flight is answered, then the process exits 0', async (t) => {
  const app = await holdingApp();
  t.teardown(() => app.close());
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}`, timeout: '10s' }, drainTimeout: '8s' });
  t.teardown(() => orders.stop('SIGKILL'));
  const caller = await ca.issue('frontend');

  // a caller with its own SVID, straight to the inbound port over mTLS
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: orders.inboundPort, path: '/slow', agent: false, ca: caller.bundle, cert: caller.cert, key: caller.key, checkServerIdentity: () => undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  }).catch((err: Error) => ({ status: 0, body: `failed: ${err.message}` }));
  await app.waitForRequest();

  const exited = orders.process.exited();
  orders.process.child.kill('SIGINT');
  await orders.process.waitFor((line) => line.msg === 'draining', 5000);
  const ready = await orders.admin('/ready');
  t.same({ status: ready.status, body: JSON.parse(ready.body) }, { status: 503, body: { status: 'draining' } }, '/ready says draining');

  // the app answers only now, after the signal: the sidecar must still relay it
  app.held[0]?.end('finished after SIGINT');
  t.same(await answer, { status: 200, body: 'finished after SIGINT' }, 'the request in flight was answered');
  t.equal(await exited, 0, 'exit 0 after draining');
  t.ok(orders.process.lines.some((line) => line.msg === 'stopped'), 'and it says it stopped');
});

t.test('/ready is 503 "starting" while the CA cannot be reached, 200 once it can', async (t) => {
  // the sidecar is told a CA address that drops every connection until the gate opens
  const gate = await startTcpGate();
  t.teardown(() => gate.stop());
  const app = await holdingApp();
  t.teardown(() => app.close());
  const sidecar = await launchSidecar(ca, { service: 'payments', inbound: { app: `http://127.0.0.1:${app.port}` }, caUrl: `https://127.0.0.1:${gate.port}` });
  t.teardown(() => sidecar.stop('SIGKILL'));

  await sidecar.process.waitFor((line) => typeof line.msg === 'string' && line.msg.startsWith('first SVID request failed, retrying'), 10_000);
  t.ok(gate.connections >= 1, 'it tried the CA');
  const starting = await sidecar.admin('/ready');
  t.same({ status: starting.status, body: JSON.parse(starting.body) }, { status: 503, body: { status: 'starting' } }, '/ready: 503 starting');
  t.equal((await sidecar.admin('/healthz')).status, 200, '/healthz: alive meanwhile');
  t.match(JSON.parse((await sidecar.admin('/identity')).body), { spiffeId: 'spiffe://mesh.local/svc/payments', status: 'starting' }, '/identity: no SVID yet');

  gate.open(Number(new URL(ca.url).port));
  const running = await sidecar.ready();
  const ready = await sidecar.admin('/ready');
  t.same({ status: ready.status, body: JSON.parse(ready.body) }, { status: 200, body: { status: 'ready' } }, '/ready: 200 once the SVID came through the gate');
  t.ok(running.inboundPort > 0, 'and the inbound listener is up');
});

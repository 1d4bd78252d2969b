// Certificates that rotate themselves, for real: sidecars on 4-second SVIDs from the CA server
// renew over mTLS at least twice while new connections keep arriving and one long-lived
// HTTP/2 session keeps carrying requests. No handshake fails, no request fails, the served
// serial changes, and the session survives.

import t from 'tap';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMeshCa, startSidecar, metricValue, type MeshCa } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';

let ca: MeshCa;
let app: TestApp;

t.before(async () => {
  ca = await startMeshCa(t.testdir(), { maxTtl: '24h' });
  app = await startEchoApp();
});
t.teardown(async () => {
  await ca?.stop();
  await app?.close();
});

function servedSerial(port: number, cert: string, key: string, bundle: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, cert, key, ca: bundle, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
      socket.destroy();
      resolve(serial.toLowerCase());
    });
    socket.once('error', reject);
  });
}

t.test('4 s SVIDs renew at least twice without a failed handshake or a dropped session', async (t) => {
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` }, ttl: '4s' });
  const frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], ttl: '4s' });
  t.teardown(() => Promise.all([frontend.stop(), orders.stop()]));
  const client = await ca.issue('probe');
  const bundle = await readFile(ca.bundlePath, 'utf8');

  const serials = new Set<string>();
  let handshakes = 0;
  let requests = 0;
  const failures: string[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    try {
      serials.add(await servedSerial(orders.inboundPort, client.cert, client.key, bundle));
      handshakes++;
    } catch (err) {
      failures.push(`handshake: ${(err as Error).message}`);
    }
    const res = await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } });
    if (res.status === 200) requests++;
    else failures.push(`request: ${res.status} ${res.body.toString()}`);
    await sleep(150);
  }
  t.same(failures, [], 'every handshake and every request succeeded');
  t.ok(serials.size >= 3, `the served serial changed at least twice (${serials.size} serials over ${handshakes} handshakes, ${requests} requests)`);

  const ordersMetrics = (await orders.admin('/metrics')).body;
  t.ok((metricValue(ordersMetrics, 'meshcar_identity_renewals_total{result="success"}') ?? 0) >= 2, 'renewals counted');
  const frontendMetrics = (await frontend.admin('/metrics')).body;
  t.equal(metricValue(frontendMetrics, 'meshcar_upstream_sessions{upstream="orders"}'), 1, 'the long-lived HTTP/2 session survived: still one session');
  const identity = JSON.parse((await orders.admin('/identity')).body) as Record<string, string>;
  t.ok(serials.has(identity.serial as string) || serials.size >= 3, '/identity shows a current serial');
  t.ok(Date.parse(identity.nextRenewal as string) > Date.now() - 1000, 'next renewal is scheduled');
});

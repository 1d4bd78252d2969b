// The admin API of a running sidecar: liveness, readiness, identity, effective config, the
// API inventory, metrics in both formats, and JSON errors for the rest.

import t from 'tap';
import http from 'node:http';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';

let ca: MeshCa;
let app: TestApp;
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startEchoApp();
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` } });
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }] });
  for (const id of [1, 2, 3]) await request(frontend.outboundPort, { path: `/headers?id=${id}`, headers: { host: 'orders' } });
  await request(frontend.outboundPort, { path: '/status/204', headers: { host: 'orders' } });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop(), orders?.stop()]);
  await ca?.stop();
  await app?.close();
});

function admin(port: number, path: string, options: { method?: string; accept?: string } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.accept ? { accept: options.accept } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('/healthz and /ready', async (t) => {
  t.same(JSON.parse((await admin(orders.adminPort, '/healthz')).body), { status: 'alive' });
  const ready = await admin(orders.adminPort, '/ready');
  t.equal(ready.status, 200);
});

t.test('/identity', async (t) => {
  const identity = JSON.parse((await admin(orders.adminPort, '/identity')).body) as Record<string, string>;
  t.equal(identity.spiffeId, 'spiffe://mesh.local/svc/orders');
  t.match(identity.serial, /^[0-9a-f]{16,}$/);
  t.ok(Date.parse(identity.notBefore as string) < Date.now());
  t.ok(Date.parse(identity.notAfter as string) > Date.now());
  t.ok(Date.parse(identity.nextRenewal as string) > Date.now(), 'next renewal in the future');
  t.ok(Date.parse(identity.nextRenewal as string) < Date.parse(identity.notAfter as string), 'and before expiry');
});

t.test('/config: the effective config, no secrets', async (t) => {
  const res = await admin(orders.adminPort, '/config');
  const config = JSON.parse(res.body) as { service: string; inbound: { timeoutMs: number }; identity: { ca: { token: string } } };
  t.equal(config.service, 'orders');
  t.equal(config.inbound.timeoutMs, 5000, 'defaults and parsed values are shown');
  t.match(config.identity.ca.token, /orders\.token$/, 'the token file path, never its content');
  t.notMatch(res.body, /eyJ|PRIVATE KEY/);
});

t.test('/endpoints: the API inventory', async (t) => {
  const { endpoints } = JSON.parse((await admin(frontend.adminPort, '/endpoints')).body) as { endpoints: Array<Record<string, unknown>> };
  const headers = endpoints.find((e) => e.route === '/headers');
  t.match(headers, { direction: 'outbound', peer: 'orders', method: 'GET', count: 3, errors: 0 });
  t.ok(Date.parse(String(headers?.lastSeen)) > Date.now() - 60_000);
  t.ok(endpoints.some((e) => e.route === '/status/{id}'), 'learned template');
  const inbound = JSON.parse((await admin(orders.adminPort, '/endpoints')).body) as { endpoints: Array<Record<string, unknown>> };
  t.ok(inbound.endpoints.some((e) => e.direction === 'inbound' && e.peer === 'frontend' && e.route === '/headers'));
});

t.test('/metrics in Prometheus text and OpenMetrics', async (t) => {
  const text = await admin(orders.adminPort, '/metrics');
  t.match(text.type, /text\/plain/);
  t.match(text.body, /meshcar_requests_total\{direction="inbound",peer="frontend",method="GET",route="\/headers",code="200"\} 3/);
  const open = await admin(orders.adminPort, '/metrics', { accept: 'application/openmetrics-text;version=1.0.0' });
  t.match(open.type, /application\/openmetrics-text/);
  t.match(open.body, /# EOF/);
  const again = await admin(orders.adminPort, '/metrics');
  t.match(again.body, /^meshcar_requests_total\{/m, 'plain text unchanged after an OpenMetrics scrape');
});

t.test('unknown paths and methods get JSON errors', async (t) => {
  const missing = await admin(orders.adminPort, '/nope');
  t.equal(missing.status, 404);
  t.equal(JSON.parse(missing.body).error, 'not_found');
  const post = await admin(orders.adminPort, '/ready', { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(JSON.parse(post.body).error, 'method_not_allowed');
});

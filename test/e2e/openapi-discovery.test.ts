// The discovery document (GET /endpoints?format=openapi) through real sidecars, with a spec
// whose paths are under a base path (servers: /api/v1) and name their parameter orderId:
// frontend's app calls api through frontend's sidecar (outbound spec, shadow) and api's sidecar
// (no spec at first, then one by a reload, shadow) in front of a plain app. Each operation is
// listed once in both documents: the calls counted under the learned /api/v1/orders/{id}
// (before the reload, and by a method the spec lacks) are under the spec's template; the
// route of a matched call is its template under the base path, so a call without the base
// path is a path of its own, and an unmatched /health is not counted as the spec's /health.

import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from '../helpers/apps.js';
import { httpPost, metricValue, startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { discoveryProblems } from '../helpers/discovery-doc.js';

const SPEC = `openapi: 3.0.3
info: {title: api, version: "1"}
servers: [{url: "https://api.example.com/api/v1"}]
paths:
  /orders/{orderId}:
    parameters: [{name: orderId, in: path, required: true, schema: {type: integer}}]
    get: {responses: {"200": {description: the order}}}
    delete: {responses: {"204": {description: gone}}}
  /health:
    get: {responses: {"200": {description: up}}}
`;

let ca: MeshCa;
let app: http.Server;
let api: RunningSidecar;
let frontend: RunningSidecar;
let specFile: string;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  specFile = join(ca.dir, 'api.openapi.yaml');
  await writeFile(specFile, SPEC);
  app = http.createServer((req, res) => res.writeHead(req.method === 'DELETE' ? 204 : 200).end());
  await new Promise<void>((done) => app.listen(0, '127.0.0.1', done));
  api = await startSidecar(ca, { service: 'api', inbound: { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` } });
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [{ name: 'api', endpoints: [`127.0.0.1:${api.inboundPort}`], identity: 'spiffe://mesh.local/svc/api', openapi: `{spec: ${specFile}, mode: shadow}` }],
  });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), api?.stop()]);
  await ca?.stop();
  await new Promise((done) => app?.close(done));
});

/** Calls api through frontend's sidecar, as frontend's app does; resolves with the status. */
async function call(method: string, path: string): Promise<number> {
  return (await request(frontend.outboundPort, { method, path, headers: { host: 'api' } })).status;
}

/** The calls a sidecar has counted in one direction (a record is written once the exchange ends). */
async function counted(sidecar: RunningSidecar, direction: string): Promise<number> {
  const rows = JSON.parse((await sidecar.admin('/endpoints')).body).endpoints as Array<{ direction: string; count: number }>;
  return rows.filter((r) => r.direction === direction).reduce((sum, r) => sum + r.count, 0);
}

type Paths = Record<string, Record<string, Record<string, unknown>>>;

t.test('each operation once, under the spec’s template and base path, inbound and outbound', async (t) => {
  t.equal(await call('GET', '/api/v1/orders/42'), 200);
  t.equal(await call('GET', '/api/v1/orders/43'), 200);
  t.equal(await call('GET', '/api/v1/health'), 200);
  // api gets its spec now: what it counted so far has learned routes
  const config = await readFile(api.configFile, 'utf8');
  const appLine = /^ {2}app: .*$/m.exec(config)?.[0] as string;
  await writeFile(api.configFile, config.replace(appLine, `${appLine}\n  openapi: {spec: ${specFile}, mode: shadow}`));
  const reload = await httpPost(api.adminPort, '/reload');
  t.equal(reload.status, 200, reload.body);
  t.match(JSON.parse(reload.body).applied, ['inbound.openapi']);
  for (const [method, path] of [['GET', '/api/v1/orders/7'], ['PATCH', '/api/v1/orders/7'], ['GET', '/orders/7'], ['GET', '/health'], ['GET', '/api/v1/health']] as const) {
    t.equal(await call(method, path), 200, `${method} ${path} goes on (shadow)`);
  }
  await waitFor(async () => (await counted(api, 'inbound')) === 8 && (await counted(frontend, 'outbound')) === 8, 10_000, 'the 8 calls counted on both sides');

  const doc = JSON.parse((await api.admin('/endpoints?format=openapi')).body);
  t.same(await discoveryProblems(doc), [], "api's document: valid OpenAPI 3.1, each path once, parameters as in the template");
  const paths = doc.paths as Paths;
  t.same(Object.keys(paths).sort(), ['/api/v1/health', '/api/v1/orders/{orderId}', '/health', '/orders/{id}']);
  const orders = paths['/api/v1/orders/{orderId}'] ?? {};
  t.match(orders.get, { 'x-meshcar-calls': 3, 'x-meshcar-documented': true, parameters: [{ name: 'orderId' }] }, "the 2 calls before the spec and the one after, under the spec's template");
  t.match(orders.patch, { 'x-meshcar-calls': 1, 'x-meshcar-documented': false }, 'a method the spec lacks: on the same path');
  t.match(orders.delete, { 'x-meshcar-calls': 0, 'x-meshcar-documented': true }, 'documented, never called: under the base path too');
  t.match(paths['/api/v1/health']?.get, { 'x-meshcar-calls': 2, 'x-meshcar-documented': true });
  t.match(paths['/orders/{id}']?.get, { 'x-meshcar-calls': 1, 'x-meshcar-documented': false }, 'without the base path: not the operation');
  t.match(paths['/health']?.get, { 'x-meshcar-calls': 1, 'x-meshcar-documented': false }, "an unmatched /health is not the spec's /api/v1/health");
  const metrics = (await api.admin('/metrics')).body;
  const requests = (route: string) => metricValue(metrics, `meshcar_requests_total{direction="inbound",peer="frontend",method="GET",route="${route}",code="200"}`);
  t.same([requests('/api/v1/orders/{orderId}'), requests('/health'), requests('/api/v1/health')], [1, 1, 2], 'the route label of a matched call is its template under the base path (/api/v1/health: the learned one before the reload, the same)');

  const calls = JSON.parse((await frontend.admin('/endpoints?format=openapi')).body);
  t.same(await discoveryProblems(calls), [], "frontend's document too");
  const upstream = calls['x-meshcar-upstreams'].api.paths as Paths;
  t.same(Object.keys(upstream).sort(), ['/api/v1/health', '/api/v1/orders/{orderId}', '/health', '/orders/{id}']);
  t.match(upstream['/api/v1/orders/{orderId}'], { get: { 'x-meshcar-calls': 3, 'x-meshcar-documented': true }, patch: { 'x-meshcar-calls': 1, 'x-meshcar-documented': false }, delete: { 'x-meshcar-calls': 0 } });
  t.match(upstream['/api/v1/health']?.get, { 'x-meshcar-calls': 2, 'x-meshcar-documented': true });
});

// The request families stay bounded against one hostile caller and a free-wheeling app, read
// back from a real sidecar's GET /metrics and GET /endpoints: a caller sending 9 standard and
// 6 custom methods to 120 random routes gets at most 300 endpoints (route and method) plus
// __other__ ones, custom methods all OTHER; an app answering 800 distinct statuses (200-999)
// makes no more `code` values than the registered statuses and the classes, nor more response
// keys in the discovery document (GET /endpoints?format=openapi).

import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type http2 from 'node:http2';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';
import { DEFAULT_ENDPOINT_CAP, TrafficMetrics } from '../../src/metrics/traffic-metrics.js';
import { Metrics } from '../../src/metrics/registry.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { h2Connect, h2Request } from '../helpers/inbound-fixture.js';
import { httpGet } from '../helpers/mesh.js';
import { discoveryProblems } from '../helpers/discovery-doc.js';

const TD = 'mesh.test';
const silent = pino({ level: 'silent' });

/** The body of GET `path` on an admin port. */
const get = async (port: number, path: string): Promise<string> => (await httpGet(port, path)).body;

/** A sidecar for service orders in front of `handler`; its caller `frontend` connected over h2. */
async function start(t: Tap.Test, handler: http.RequestListener): Promise<{ session: http2.ClientHttp2Session; adminPort: number }> {
  const pki: TestPki = await makePki(TD);
  const dir = t.testdir();
  const svid = await pki.issue(`spiffe://${TD}/svc/orders`);
  await writeFile(join(dir, 'svid.crt'), svid.chainPem);
  await writeFile(join(dir, 'svid.key'), svid.privateKeyPem);
  await writeFile(join(dir, 'bundle.pem'), pki.bundlePem);
  const app = http.createServer(handler);
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const files = `{cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}`;
  const file = join(dir, 'orders.yaml');
  await writeFile(file, `service: orders\ntrustDomain: ${TD}\nidentity: {files: ${files}}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:${(app.address() as AddressInfo).port}"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const sidecar = new Sidecar(await loadSidecarConfig(file), silent);
  t.teardown(() => sidecar.stop());
  const addresses = await sidecar.start();
  const leaf = await pki.issue(`spiffe://${TD}/svc/frontend`);
  const session = await h2Connect(addresses.inbound!.port, { ca: pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined });
  t.teardown(() => session.destroy());
  return { session, adminPort: addresses.admin.port };
}

/** Sends the requests 50 at a time; resolves with the statuses. */
async function send(session: http2.ClientHttp2Session, heads: http2.OutgoingHttpHeaders[]): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < heads.length; i += 50) {
    const batch = await Promise.all(heads.slice(i, i + 50).map((h) => h2Request(session, h).then((r) => r.status, () => 0)));
    statuses.push(...batch);
  }
  return statuses;
}

/** The label sets of meshcar_requests_total. */
function requestSeries(text: string): Array<Record<string, string>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('meshcar_requests_total{'))
    .map((line) => Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])));
}

t.test('every method to 120 routes: endpoints capped, custom methods OTHER', async (t) => {
  const { session, adminPort } = await start(t, (_req, res) => res.end('ok'));
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY', 'FOO', 'BAR', 'PURGE', 'LINK', 'Z1'];
  const heads = Array.from({ length: 120 }, (_, r) => methods.map((m) => ({ ':method': m, ':path': `/route${r}x/leaf` }))).flat();
  const statuses = await send(session, heads);
  t.ok(statuses.every((s) => s >= 200), `all ${heads.length} requests answered (${[...new Set(statuses)].join(", ")})`);
  const series = requestSeries(await get(adminPort, '/metrics')).filter((s) => s.peer === 'frontend');
  const endpoints = new Set(series.map((s) => `${s.method} ${s.route}`));
  const other = [...endpoints].filter((e) => e.endsWith(' __other__'));
  t.ok(endpoints.size <= DEFAULT_ENDPOINT_CAP + 10, `${endpoints.size} endpoints for ${heads.length} distinct requests (${other.length} under __other__)`);
  t.same(new Set(series.map((s) => s.method)), new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'OTHER']), 'custom methods are OTHER');
  const listed = JSON.parse(await get(adminPort, '/endpoints')) as { endpoints?: unknown[] } | unknown[];
  const rows = Array.isArray(listed) ? listed : (listed.endpoints ?? []);
  t.ok(rows.length <= DEFAULT_ENDPOINT_CAP + 10, `/endpoints lists ${rows.length}`);
});

t.test('an app answering 800 distinct statuses: code labels stay within the registered ones and the classes', async (t) => {
  const { session, adminPort } = await start(t, (req, res) => {
    res.statusCode = Number(/s=(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
    res.end();
  });
  const heads = Array.from({ length: 800 }, (_, i) => ({ ':method': 'GET', ':path': `/status?s=${200 + i}` }));
  await send(session, heads);
  const codes = new Set(requestSeries(await get(adminPort, '/metrics')).filter((s) => s.peer === 'frontend').map((s) => s.code));
  t.ok(codes.size <= 70, `${codes.size} code values for 800 statuses`);
  t.ok(codes.has('2xx') && codes.has('5xx'), 'unregistered statuses by their class');
  // the discovery document lists them the same way, as OpenAPI keys (it listed all 800: 15 KB)
  const doc = JSON.parse(await get(adminPort, '/endpoints?format=openapi')) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  t.same(await discoveryProblems(doc), [], 'a valid OpenAPI document');
  const keys = Object.keys(doc.paths['/status']?.get?.responses ?? {});
  t.ok(keys.length > 0 && keys.length <= 70, `${keys.length} response keys for 800 statuses`);
  // (600-999 never reach the document from here: the inbound answers such an app's status 502)
  t.ok(['200', '404', '2XX', '5XX'].every((k) => keys.includes(k)), `registered ones as they are, the rest by range (${keys.join(' ')})`);
  t.notOk(keys.includes('250') || keys.includes('999'), 'no unregistered status of its own');
});

t.test('configured route templates and spec operations are never folded into __other__', async (t) => {
  const traffic = new TrafficMetrics(new Metrics({ processMetrics: false }), { endpointCap: 10, routesByUpstream: new Map([['orders', ['/orders/{id}']]]) });
  const record = (method: string, path: string, schemaRoute?: string) => ({ direction: 'outbound' as const, peer: 'orders', method, path, status: 200, durationSeconds: 0.001, ...(schemaRoute ? { schema: { route: schemaRoute, violation: undefined } } : {}) });
  for (let i = 0; i < 20; i++) traffic.requestFinished(record('GET', `/learned${i}x`));
  traffic.requestFinished(record('DELETE', '/orders/7'));
  traffic.requestFinished(record('PATCH', '/anything', '/items/{itemId}'));
  const routes = traffic.endpoints().map((e) => `${e.method} ${e.route}`);
  t.ok(routes.includes('GET __other__'), 'learned routes past the cap: __other__');
  t.ok(routes.includes('DELETE /orders/{id}'), 'a configured template keeps its route past the cap');
  t.ok(routes.includes('PATCH /items/{itemId}'), "a spec's operation keeps its route past the cap");
});

t.test("a reload that changes an upstream's route templates keeps the routes it learned under the cap", async (t) => {
  // each such reload gave the upstream a fresh set of learned routes: 301 route labels after two
  // reloads, where the README says at most 100 per direction and peer (a hunt's LOW)
  const traffic = new TrafficMetrics(new Metrics({ processMetrics: false }), { endpointCap: 1000, routeCap: 20 });
  const record = (path: string) => ({ direction: 'outbound' as const, peer: 'orders', method: 'GET', path, status: 200, durationSeconds: 0.001 });
  const learned = () => new Set(traffic.endpoints().filter((e) => e.peer === 'orders' && e.route !== '__other__' && !e.route.startsWith('/ok/')).map((e) => e.route));
  for (let i = 0; i < 30; i++) traffic.requestFinished(record(`/first${i}x`));
  t.equal(learned().size, 20, '20 routes learned, the rest __other__');
  traffic.setRoutes('orders', ['/ok/{n}']);
  for (let i = 0; i < 30; i++) traffic.requestFinished(record(`/second${i}x`));
  traffic.requestFinished(record('/ok/7'));
  traffic.setRoutes('orders', ['/ok/{k}']);
  for (let i = 0; i < 30; i++) traffic.requestFinished(record(`/third${i}x`));
  traffic.requestFinished(record('/ok/8'));
  t.equal(learned().size, 20, 'still 20 learned routes after two reloads of the templates');
  const routes = new Set(traffic.endpoints().filter((e) => e.peer === 'orders').map((e) => e.route));
  t.ok(routes.has('/ok/{n}') && routes.has('/ok/{k}'), 'each configured template labels its paths, outside the cap');
  traffic.requestFinished(record('/first3x'));
  t.ok(learned().has('/first3x'), 'a route learned before the reloads keeps its label');
});

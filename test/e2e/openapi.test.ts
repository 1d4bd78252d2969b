// OpenAPI schema validation through real sidecars and a real app: the test plays frontend's
// app and calls orders through frontend's sidecar (outbound spec, shadow), whose mTLS call
// reaches orders' sidecar (inbound spec, enforce, maxBodySize 1KiB) in front of the demo's
// orders app. Every kind of violation is refused in enforce mode (the app never receives it)
// and forwarded in shadow mode (it does); both count it. Then: reloads (mode change, a broken
// spec that keeps the old one), the outbound side in enforce mode, and discovery.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startOrdersApp } from '../../src/demo/apps.js';
import { request } from '../helpers/apps.js';
import { httpPost, metricValue, startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { ALIAS_BOMB } from '../helpers/specs.js';

const SPEC = resolve('config/orders.openapi.yaml');
const KEY = 'idem-0001';

let ca: MeshCa;
let app: { server: http.Server; port: number };
/** Every request the orders app received: "METHOD /path?query". */
const received: string[] = [];
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startOrdersApp(0);
  app.server.on('request', (req: http.IncomingMessage) => received.push(`${req.method} ${req.url}`));
  orders = await startSidecar(ca, {
    service: 'orders',
    inbound: { app: `http://127.0.0.1:${app.port}`, openapi: `{spec: ${SPEC}, mode: enforce, maxBodySize: 1KiB}` },
    access: true,
  });
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', openapi: `{spec: ${SPEC}, mode: shadow, maxBodySize: 1KiB}` }],
  });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
  await new Promise((done) => app?.server.close(done));
});

interface Call {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

const json = (value: unknown) => JSON.stringify(value);
const GOOD: Call[] = [
  { name: 'an order', method: 'GET', path: '/orders/42' },
  { name: 'a listing', method: 'GET', path: '/orders?status=open&limit=5' },
  { name: 'a new order', method: 'POST', path: '/orders', headers: { 'content-type': 'application/json', 'idempotency-key': KEY }, body: json({ item: 'book', qty: 2 }) },
];
/** Each bad call, with the answer enforce mode gives and the kind counted. */
const BAD: Array<Call & { status: number; error: string; kind: string; route: string; message: string }> = [
  { name: 'a non-integer id', method: 'GET', path: '/orders/abc', status: 400, error: 'schema_violation', kind: 'path', route: '/orders/{id}', message: 'path/id: must be integer' },
  { name: 'no status query', method: 'GET', path: '/orders?limit=5', status: 400, error: 'schema_violation', kind: 'query', route: '/orders', message: 'query/status: is required' },
  {
    name: 'no idempotency-key header',
    method: 'POST',
    path: '/orders',
    headers: { 'content-type': 'application/json' },
    body: json({ item: 'book', qty: 1 }),
    status: 400,
    error: 'schema_violation',
    kind: 'header',
    route: '/orders',
    message: 'header/idempotency-key: is required',
  },
  {
    name: 'a text body',
    method: 'POST',
    path: '/orders',
    headers: { 'content-type': 'text/plain', 'idempotency-key': KEY },
    body: 'two books',
    status: 415,
    error: 'unsupported_media_type',
    kind: 'content_type',
    route: '/orders',
    message: 'content_type: Content-Type text/plain is not accepted (send application/json)',
  },
  {
    name: 'qty 0',
    method: 'POST',
    path: '/orders',
    headers: { 'content-type': 'application/json', 'idempotency-key': KEY },
    body: json({ item: 'book', qty: 0 }),
    status: 400,
    error: 'schema_violation',
    kind: 'body',
    route: '/orders',
    message: 'body/qty: must be >= 1',
  },
  {
    name: 'a body over maxBodySize',
    method: 'POST',
    path: '/orders',
    headers: { 'content-type': 'application/json', 'idempotency-key': KEY },
    body: json({ item: 'book', qty: 1, note: 'x'.repeat(2000) }),
    status: 413,
    error: 'body_too_large',
    kind: 'body',
    route: '/orders',
    message: 'body: is larger than the 1024-byte limit (openapi.maxBodySize)',
  },
  { name: 'an undocumented operation', method: 'PATCH', path: '/orders/1', status: 404, error: 'undocumented_operation', kind: 'undocumented_operation', route: '/orders/{id}', message: 'PATCH /orders/1 is not an operation of the API' },
];

/** A call as frontend's app makes it: to its sidecar's outbound port, Host: orders. */
function call(c: Call, id: string) {
  // request ids are tokens: no spaces
  const requestId = id.replace(/[^A-Za-z0-9-]/g, '-');
  return request(frontend.outboundPort, { method: c.method, path: c.path, headers: { host: 'orders', 'x-request-id': requestId, ...(c.headers ?? {}) }, ...(c.body !== undefined ? { body: c.body } : {}) });
}

/** POST /reload on an admin port. */
const postReload = (port: number) => httpPost(port, '/reload');

async function editConfig(sidecar: RunningSidecar, from: string, to: string): Promise<void> {
  const before = await readFile(sidecar.configFile, 'utf8');
  if (!before.includes(from)) throw new Error(`config edit did not apply: ${from}`);
  await writeFile(sidecar.configFile, before.replace(from, to));
}

/**
 * One /metrics page of a sidecar. Scrapes of one sidecar start at least 1 s apart (the admin
 * server coalesces renders, src/admin/shared-renders.ts), so a check reads all it needs from
 * one page taken after the calls it counts, not a scrape per number.
 */
async function scrape(sidecar: RunningSidecar): Promise<string> {
  return (await sidecar.admin('/metrics')).body;
}

function violations(text: string, direction: string, peer: string, route: string, kind: string): number {
  return metricValue(text, `meshcar_schema_violations_total{direction="${direction}",peer="${peer}",route="${route}",kind="${kind}"}`) ?? 0;
}

t.test('enforce: each violation is refused with its JSON error; the app receives only the valid calls', async (t) => {
  for (const c of GOOD) {
    const res = await call(c, `good-${c.name}`);
    t.ok(res.status === 200 || res.status === 201, `${c.name}: ${res.status} ${res.body.toString()}`);
  }
  for (const c of BAD) {
    const res = await call(c, `bad-${c.name}`);
    t.equal(res.status, c.status, `${c.name}: ${c.status}`);
    t.equal(res.headers['x-meshcar-error'], c.error);
    t.same(JSON.parse(res.body.toString()), { error: c.error, message: c.message, requestId: `bad-${c.name}`.replace(/[^A-Za-z0-9-]/g, '-') }, `${c.name}: the message names location and rule`);
  }
  t.same(received, ['GET /orders/42', 'GET /orders?status=open&limit=5', 'POST /orders'], 'the app never received a bad call');

  const [ordersPage, frontendPage] = await Promise.all([scrape(orders), scrape(frontend)]);
  for (const c of BAD) t.equal(violations(ordersPage, 'inbound', 'frontend', c.route, c.kind) >= 1, true, `inbound counts ${c.kind} on ${c.route}`);
  t.equal(violations(ordersPage, 'inbound', 'frontend', '/orders', 'body'), 2, 'qty 0 and the oversized body');
  // frontend's sidecar, in shadow mode, counted the head violations (bodies are not checked outbound) and let them through
  for (const kind of ['path', 'query', 'header', 'content_type', 'undocumented_operation']) {
    t.equal(violations(frontendPage, 'outbound', 'orders', kind === 'path' || kind === 'undocumented_operation' ? '/orders/{id}' : '/orders', kind), 1, `outbound (shadow) counts ${kind}`);
  }
  t.equal(violations(frontendPage, 'outbound', 'orders', '/orders', 'body'), 2, 'outbound (shadow) validates bodies as they stream by: qty 0, oversized');

  t.equal(metricValue(ordersPage, 'meshcar_requests_total{direction="inbound",peer="frontend",method="GET",route="/orders/{id}",code="200"}'), 1, "the spec's template is the route label");

  const rows = JSON.parse((await orders.admin('/endpoints')).body).endpoints as Array<Record<string, unknown>>;
  const row = (method: string, route: string) => rows.find((r) => r.method === method && r.route === route);
  t.match(row('POST', '/orders'), { documented: true, count: 5, violations: 4 }, '/endpoints: POST /orders, documented, 4 of 5 calls broke the spec');
  t.match(row('GET', '/orders/{id}'), { documented: true, count: 2, violations: 1 });
  t.match(row('PATCH', '/orders/{id}'), { documented: false, count: 1, violations: 1 }, 'an undocumented call is a row of its own, documented: false');

  const access = orders.process.lines.find((l) => l.component === 'access' && l.requestId === 'bad-qty-0');
  t.match(access, { route: '/orders', status: 400, error: 'schema_violation', schema: { kind: 'body', message: 'body/qty: must be >= 1' } }, 'the access log names the first violation');
  const passed = orders.process.lines.find((l) => l.component === 'access' && l.requestId === 'good-an-order');
  t.ok(passed && !('schema' in passed), 'a valid call has no schema field');
});

t.test('shadow after a reload: the bad calls reach the app and are counted', async (t) => {
  await editConfig(orders, 'mode: enforce', 'mode: shadow');
  const reload = await postReload(orders.adminPort);
  t.equal(reload.status, 200, reload.body);
  t.match(JSON.parse(reload.body).applied, ['inbound.openapi.mode']);
  received.length = 0;
  const before = violations(await scrape(orders), 'inbound', 'frontend', '/orders/{id}', 'path');
  for (const c of BAD) {
    const res = await call(c, `shadow-${c.name}`);
    t.not(res.headers['x-meshcar-error'], c.error, `${c.name}: forwarded (${res.status})`);
  }
  t.equal(received.length, BAD.length, 'the app received every call');
  t.ok(received.includes('PATCH /orders/1') && received.includes('GET /orders/abc'));
  t.equal(violations(await scrape(orders), 'inbound', 'frontend', '/orders/{id}', 'path'), before + 1, 'and the counter moved');
  // the access line is written after the response: wait for it rather than read at once
  const big = await orders.process.waitFor((l) => l.component === 'access' && l.requestId === 'shadow-a-body-over-maxBodySize', 5000);
  t.match(big, { status: 201, schema: { kind: 'body' } }, 'an oversized body is forwarded whole in shadow mode');
});

t.test('a reload with a broken spec is refused and keeps the running spec', async (t) => {
  const broken = join(ca.dir, 'broken.openapi.yaml');
  await writeFile(broken, (await readFile(SPEC, 'utf8')).replace("$ref: '#/components/schemas/NewOrder'", "$ref: '#/components/schemas/Order'"));
  await editConfig(orders, `spec: ${SPEC}`, `spec: ${broken}`);
  const reload = await postReload(orders.adminPort);
  t.equal(reload.status, 400);
  t.match(JSON.parse(reload.body).message, `${orders.configFile}: inbound.openapi.spec: ${broken}#/paths/~1orders/post/requestBody/content/application~1json/schema: Missing $ref pointer`);
  const before = violations(await scrape(orders), 'inbound', 'frontend', '/orders/{id}', 'path');
  received.length = 0;
  await call(BAD[0] as Call, 'after-broken');
  t.same(received, ['GET /orders/abc'], 'still shadow');
  t.equal(violations(await scrape(orders), 'inbound', 'frontend', '/orders/{id}', 'path'), before + 1, 'still checked against the old spec');
});

t.test('a reload with a YAML alias bomb in the spec answers 400 at once; the sidecar keeps serving', async (t) => {
  const bomb = join(ca.dir, 'bomb.openapi.yaml');
  await writeFile(bomb, ALIAS_BOMB);
  const before = await readFile(orders.configFile, 'utf8');
  const inboundSpec = /(openapi: \{spec: )[^,]+/;
  if (!inboundSpec.test(before)) throw new Error('no inbound spec in the orders config');
  await writeFile(orders.configFile, before.replace(inboundSpec, `$1${bomb}`));
  t.teardown(() => writeFile(orders.configFile, before));
  const started = Date.now();
  // bounded: without the alias limit the sidecar expands 10^9 nodes and never answers
  const reload = await Promise.race([postReload(orders.adminPort), new Promise<{ status: number; body: string }>((done) => setTimeout(() => done({ status: 0, body: 'no answer within 10 s' }), 10_000).unref())]);
  t.equal(reload.status, 400, reload.body);
  // the fault never answers; a reload re-reads config, certificates and spec (seconds on a busy host)
  t.ok(Date.now() - started < 8_000, `answered in ${Date.now() - started} ms`);
  t.match(JSON.parse(reload.body).message, `${orders.configFile}: inbound.openapi.spec: ${bomb}: its YAML aliases (*name) expand to far more than the file holds`);
  t.equal((await orders.admin('/healthz')).status, 200, '/healthz answers');
  const res = await call(GOOD[0] as Call, 'after-bomb');
  t.equal(res.status, 200, 'still serving, on the running spec');
});

t.test('outbound enforce: the call is refused before it leaves; orders never sees it', async (t) => {
  await editConfig(frontend, 'mode: shadow', 'mode: enforce');
  t.equal((await postReload(frontend.adminPort)).status, 200);
  // orders' counts before any of this test's calls: none of them may move them
  const ordersBefore = await scrape(orders);
  const before = violations(ordersBefore, 'inbound', 'frontend', '/orders/{id}', 'undocumented_operation');
  const bodyBefore = violations(ordersBefore, 'inbound', 'frontend', '/orders', 'body');
  received.length = 0;
  const res = await call({ name: 'patch', method: 'PATCH', path: '/orders/7' }, 'outbound-enforce');
  t.equal(res.status, 404);
  t.same(JSON.parse(res.body.toString()), { error: 'undocumented_operation', message: 'PATCH /orders/7 is not an operation of the API', requestId: 'outbound-enforce' });
  const good = await call(GOOD[0] as Call, 'outbound-enforce-good');
  t.equal(good.status, 200);
  for (const c of BAD.filter((b) => b.kind === 'body')) {
    const res = await call(c, `outbound-${c.name}`);
    t.equal(res.status, c.status, `${c.name}: ${c.status} before it leaves`);
    t.equal(JSON.parse(res.body.toString()).message, c.message);
  }
  const created = await call(GOOD[2] as Call, 'outbound-enforce-post');
  t.equal(created.status, 201, 'a valid body, read and validated, then sent on whole');
  // an h2c app (HTTP/2 with prior knowledge), as gRPC clients and many HTTP clients are
  const session = http2.connect(`http://127.0.0.1:${frontend.outboundPort}`);
  t.teardown(() => session.close());
  const h2c = (body: string) =>
    new Promise<{ status: number; body: string }>((done, fail) => {
      const stream = session.request({ ':method': 'POST', ':path': '/orders', ':authority': 'orders', 'content-type': 'application/json', 'idempotency-key': KEY });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => done({ status, body: Buffer.concat(chunks).toString() }));
      stream.on('error', fail);
      stream.end(body);
    });
  const h2Bad = await h2c(json({ item: 'pen', qty: -1 }));
  t.same([h2Bad.status, JSON.parse(h2Bad.body).message], [400, 'body/qty: must be >= 1'], 'h2c: refused before it leaves');
  t.equal((await h2c(json({ item: 'pen', qty: 1 }))).status, 201, 'h2c: a valid body goes on');
  t.same(received, ['GET /orders/42', 'POST /orders', 'POST /orders'], 'only the valid calls left');
  const ordersAfter = await scrape(orders);
  t.equal(violations(ordersAfter, 'inbound', 'frontend', '/orders/{id}', 'undocumented_operation'), before, 'orders saw nothing of it');
  t.equal(violations(ordersAfter, 'inbound', 'frontend', '/orders', 'body'), bodyBefore, 'nor of the bad bodies');
  // once in each earlier test (shadow there), and this one
  t.equal(violations(await scrape(frontend), 'outbound', 'orders', '/orders/{id}', 'undocumented_operation'), 3, 'frontend counted it');
});

t.test('discovery: GET /endpoints?format=openapi is a valid OpenAPI 3.1 document of the traffic seen', async (t) => {
  const res = await orders.admin('/endpoints?format=openapi');
  t.equal(res.status, 200);
  const doc = JSON.parse(res.body);
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'the OpenAPI parser accepts it');
  t.equal(doc.openapi, '3.1.0');
  const get = doc.paths['/orders/{id}'].get;
  t.same(get.parameters, [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
  // 400: refused in enforce mode; 404: the app's answer to /orders/abc, forwarded in shadow mode
  t.same(Object.keys(get.responses).sort(), ['200', '400', '404'], 'the status codes answered');
  t.same(get['x-meshcar-callers'], ['frontend']);
  t.equal(get['x-meshcar-documented'], true);
  t.same(Object.keys(doc.paths['/orders'].post.responses).sort(), ['201', '400', '413', '415']);
  t.match(doc.paths['/orders/{id}'].patch, { 'x-meshcar-documented': false }, 'a shadow API: called, not documented');
  t.match(doc.paths['/orders/{id}'].delete, { 'x-meshcar-documented': true, 'x-meshcar-calls': 0, responses: { default: {} } }, 'documented, never called');

  const calls = JSON.parse((await frontend.admin('/endpoints?format=openapi')).body);
  await t.resolves(SwaggerParser.validate(structuredClone(calls)));
  const called = calls['x-meshcar-upstreams'].orders.paths['/orders/{id}'].get;
  t.match(called, { responses: { 200: {} } }, "frontend's calls, per upstream");
  t.notOk('x-meshcar-callers' in called, 'no callers on a call this service makes (the upstream is not its own caller)');
  t.equal((await orders.admin('/endpoints?format=yaml')).status, 400, 'an unknown format is refused');
  t.match(JSON.parse((await orders.admin('/endpoints')).body), { endpoints: [] }, 'plain /endpoints is unchanged');
});

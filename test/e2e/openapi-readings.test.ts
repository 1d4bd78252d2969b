// Requests that the app behind reads otherwise than the OpenAPI check does, through real
// sidecars in enforce mode, inbound (HTTP/1.1 and HTTP/2 over mTLS, as frontend) and outbound
// (the app's plain HTTP/1.1 calls to an upstream whose own sidecar has no spec): a raw `#`
// (`/orders/mine#x` was checked as /orders/{id}; Express, which parses the target as a URL,
// serves /orders/mine, past its required header), another case (Express routes without regard
// to it), an encoded slash (Flask and Django are handed it decoded), query keys qs, PHP, Rack
// or ASP.NET read as a declared parameter (`limit[]`, `LIMIT`), `;` as a query separator
// (Rack 2), a fragment in the query, and a method override the spec does not declare. Each
// is refused with the JSON error, and the app sees none; what reads the same everywhere still
// passes.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { h2Connect, h2Request } from '../helpers/inbound-fixture.js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { rawTcpRequest, rawTlsRequest, type RawResponse } from '../helpers/raw-http.js';

const SPEC = `openapi: 3.0.3
info: {title: orders, version: "1"}
paths:
  /orders/mine:
    get:
      parameters:
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /orders/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, maxLength: 40}}
      responses: {"200": {description: ok}}
  /orders/{id}/refund:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: x-owner, in: header, required: true, schema: {type: string, enum: [me]}}
      responses: {"200": {description: ok}}
  /search:
    get:
      parameters:
        - {name: q, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
        - {name: filter, in: query, style: deepObject, schema: {type: object}}
      responses: {"200": {description: ok}}
`;

let ca: MeshCa;
let app: http.Server;
/** What the app served, read as Express reads a target: the URL's pathname and search. */
const served: string[] = [];
let orders: RunningSidecar;
let billing: RunningSidecar;
let frontend: RunningSidecar;
let mtls: tls.ConnectionOptions;

t.before(async () => {
  app = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    served.push(`${req.method} ${url.pathname}${url.search}`);
    req.resume();
    req.on('end', () => res.end('app'));
  });
  await new Promise<void>((done) => app.listen(0, '127.0.0.1', done));
  const appUrl = `http://127.0.0.1:${(app.address() as net.AddressInfo).port}`;
  ca = await startMeshCa(t.testdir());
  const spec = join(ca.dir, 'orders.openapi.yaml');
  await writeFile(spec, SPEC);
  const enforce = `{spec: ${spec}, mode: enforce}`;
  [orders, billing] = await Promise.all([
    startSidecar(ca, { service: 'orders', inbound: { app: appUrl, openapi: enforce } }),
    startSidecar(ca, { service: 'billing', inbound: { app: appUrl } }),
  ]);
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'billing', endpoints: [`127.0.0.1:${billing.inboundPort}`], identity: 'spiffe://mesh.local/svc/billing', openapi: enforce }] });
  const id = await ca.issue('frontend');
  mtls = { cert: id.cert, key: id.key, ca: id.bundle, checkServerIdentity: () => undefined };
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop(), billing?.stop()]);
  await ca?.stop();
  await new Promise((done) => app?.close(done));
});

const head = (target: string, host: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${extra}\r\n`;
const inbound = (target: string, extra?: string) => rawTlsRequest(orders.inboundPort, mtls, head(target, 'orders', extra));
const outbound = (target: string, extra?: string) => rawTcpRequest(frontend.outboundPort, head(target, 'billing', extra));
const refusal = (r: RawResponse) => ({ status: r.status, error: r.headers['x-meshcar-error'], message: r.headers['content-type']?.startsWith('application/json') ? (JSON.parse(r.body) as { message: string }).message : r.body });

/** Express's method-override middleware would run DELETE /orders/7, which the spec lacks. */
const OVERRIDE = 'X-HTTP-Method-Override: DELETE\r\n';

/** Each target, its refusal: status, error code and the start of the message. */
const REFUSED: ReadonlyArray<[string, number, string, RegExp]> = [
  ['/orders/mine#x', 400, 'bad_request', /holds a # \(a fragment is not sent\)/],
  ['/orders/MINE', 400, 'schema_violation', /^path: \/orders\/MINE reads as \/orders\/mine to an app that routes paths without regard to case$/],
  ['/orders/1%2Frefund', 400, 'schema_violation', /reads as \/orders\/\{id\}\/refund to an app that decodes %2F/],
  ['/search?limit[]=1000', 400, 'schema_violation', /^query\/limit: is given as limit\[\]/],
  ['/search?LIMIT=1000', 400, 'schema_violation', /^query\/limit: is given as LIMIT/],
  ['/search?q=x;limit=1000', 400, 'schema_violation', /^query\/limit: must be <= 100 \(with ; read as &/],
  // the inbound's plain-path rule refuses a raw # in the query too, before any spec check
  ['/search?q=a#&limit=1000', 400, 'bad_request', /holds a # \(a fragment is not sent\)/],
];

t.test('inbound, HTTP/1.1: each reading refused with the JSON error; the app sees none', async (t) => {
  served.length = 0;
  for (const [target, status, error, message] of REFUSED) t.match(refusal(await inbound(target)), { status, error, message }, target);
  t.match(refusal(await inbound('/orders/7', OVERRIDE)), { status: 400, error: 'schema_violation', message: /^header\/x-http-method-override: asks for DELETE/ }, 'a method override');
  t.same(served, [], 'the app served none of them');
  t.equal((await inbound('/orders/mine', 'x-owner: me\r\n')).status, 200, 'the literal operation, as documented');
  t.equal((await inbound('/orders/group%2Fproject')).status, 200, 'an encoded slash that reads as no other operation is an id');
  t.equal((await inbound('/search?q=a;b&limit=5&filter[color]=red')).status, 200, "a ; that hides no parameter, and a deepObject's keys");
  t.same(served, ['GET /orders/mine', 'GET /orders/group%2Fproject', 'GET /search?q=a;b&limit=5&filter[color]=red']);
});

t.test('inbound, HTTP/2: a raw # and another case are refused too', async (t) => {
  served.length = 0;
  const session = await h2Connect(orders.inboundPort, { ...mtls, ALPNProtocols: ['h2'] });
  t.teardown(() => session.close());
  const get = (path: string) => h2Request(session, { ':method': 'GET', ':path': path, ':authority': 'orders' });
  t.match((await get('/orders/mine#x')).headers, { ':status': 400, 'x-meshcar-error': 'bad_request' }, '/orders/mine#x');
  t.match((await get('/orders/MINE')).headers, { ':status': 400, 'x-meshcar-error': 'schema_violation' }, '/orders/MINE');
  t.match((await get('/search?limit[]=1000')).headers, { ':status': 400, 'x-meshcar-error': 'schema_violation' }, '/search?limit[]=1000');
  t.same(served, []);
  t.equal((await get('/orders/7')).headers[':status'], 200);
});

t.test("outbound: the app's calls are held the same way before they leave", async (t) => {
  served.length = 0;
  for (const [target, , , message] of REFUSED) {
    // the outbound has no plain-path rule of its own: a raw # is the spec check's path violation
    const wanted = target.startsWith('/orders/mine#')
      ? { status: 400, error: 'schema_violation', message: /is not a plain absolute path: it holds a # \(a fragment is not sent\)/ }
      : target.includes('#')
        ? { status: 400, error: 'schema_violation', message: /^query: a # \(a fragment\)/ }
        : { status: 400, error: 'schema_violation', message };
    t.match(refusal(await outbound(target)), wanted, target);
  }
  t.match(refusal(await outbound('/orders/7', OVERRIDE)), { status: 400, error: 'schema_violation', message: /^header\/x-http-method-override: asks for DELETE/ }, 'a method override');
  t.same(served, [], 'billing (whose sidecar has no spec) served none of them');
  t.equal((await outbound('/orders/mine', 'x-owner: me\r\n')).status, 200);
  t.same(served, ['GET /orders/mine']);
});

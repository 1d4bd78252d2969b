// Whole mesh, gRPC route labels: a @grpc/grpc-js client calls versioned services
// (/acme.orders.v1.Orders/Get, /acme.payments.v1.Payments/Get, the standard
// /grpc.health.v1.Health/Check) through a real sidecar pair to an h2c grpc-js app. A gRPC
// path names a service and a method, never an id: each keeps its own route on both sides
// (`acme.orders.v1.Orders` is 21 characters mixing letters and digits, which the learned
// routes' token rule took for an id: both services were `/{id}/Get`). A plain HTTP request
// with such a segment is still an id, and hostile service names still stop at the route cap.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';
import { promtoolCheck } from '../helpers/promtool.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const unary = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize });
const ORDERS = '/acme.orders.v1.Orders/Get';
const PAYMENTS = '/acme.payments.v1.Payments/Get';
const HEALTH = '/grpc.health.v1.Health/Check';

let ca: MeshCa;
let app: grpc.Server;
let web: TestApp;
let shop: RunningSidecar;
let site: RunningSidecar;
let frontend: RunningSidecar;
let client: grpc.Client;

function call(path: string): Promise<number> {
  return new Promise((resolve) => client.makeUnaryRequest(path, raw.serialize, raw.deserialize, Buffer.from('x'), (err) => resolve(err ? (err.code ?? -1) : 0)));
}

t.before(async () => {
  const dir = t.testdir();
  ca = await startMeshCa(dir);
  app = new grpc.Server();
  const answer = (_call: unknown, done: grpc.sendUnaryData<Buffer>) => done(null, Buffer.from('ok'));
  app.addService({ Get: unary(ORDERS) }, { Get: answer });
  app.addService({ Get: unary(PAYMENTS) }, { Get: answer });
  app.addService({ Check: unary(HEALTH) }, { Check: answer });
  const port = await new Promise<number>((resolve, reject) => app.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  web = await startEchoApp();
  [shop, site] = await Promise.all([
    startSidecar(ca, { service: 'shop', inbound: { app: `h2c://127.0.0.1:${port}` } }),
    startSidecar(ca, { service: 'site', inbound: { app: `http://127.0.0.1:${web.port}` } }),
  ]);
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [
      { name: 'shop', endpoints: [`127.0.0.1:${shop.inboundPort}`], identity: 'spiffe://mesh.local/svc/shop' },
      { name: 'site', endpoints: [`127.0.0.1:${site.inboundPort}`], identity: 'spiffe://mesh.local/svc/site' },
    ],
  });
  client = new grpc.Client(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'shop' });
});

t.teardown(async () => {
  client?.close();
  await Promise.all([frontend?.stop('SIGKILL'), shop?.stop(), site?.stop()]);
  await ca?.stop();
  app?.forceShutdown();
  await web?.close();
});

t.test('each versioned gRPC service keeps its own route, both sides', async (t) => {
  for (const path of [ORDERS, ORDERS, PAYMENTS, HEALTH]) t.equal(await call(path), grpc.status.OK, path);
  for (const [sidecar, direction, peer] of [
    [frontend, 'outbound', 'shop'],
    [shop, 'inbound', 'frontend'],
  ] as const) {
    const text = (await sidecar.admin('/metrics')).body;
    const series = (family: string) => text.split('\n').filter((l) => l.startsWith(`${family}{direction="${direction}"`));
    t.same(
      series('meshcar_requests_total').sort(),
      [
        `meshcar_requests_total{direction="${direction}",peer="${peer}",method="POST",route="${ORDERS}",code="200"} 2`,
        `meshcar_requests_total{direction="${direction}",peer="${peer}",method="POST",route="${PAYMENTS}",code="200"} 1`,
        `meshcar_requests_total{direction="${direction}",peer="${peer}",method="POST",route="${HEALTH}",code="200"} 1`,
      ].sort(),
      `${direction}: one route per method`,
    );
    t.same(
      series('meshcar_grpc_responses_total').sort(),
      [
        `meshcar_grpc_responses_total{direction="${direction}",peer="${peer}",route="${ORDERS}",grpc_code="OK"} 2`,
        `meshcar_grpc_responses_total{direction="${direction}",peer="${peer}",route="${PAYMENTS}",grpc_code="OK"} 1`,
        `meshcar_grpc_responses_total{direction="${direction}",peer="${peer}",route="${HEALTH}",grpc_code="OK"} 1`,
      ].sort(),
    );
    const checked = await promtoolCheck(text);
    t.equal(checked.code, 0, `promtool: ${checked.output || 'clean'}`);
  }
});

t.test('a plain HTTP request: a token-like segment is still an id', async (t) => {
  const res = await request(frontend.outboundPort, { path: '/acme.orders.v1.Orders/Get', headers: { host: 'site' } });
  t.equal(res.status, 404, 'the echo app answers it');
  const text = (await frontend.admin('/metrics')).body;
  t.match(text, /^meshcar_requests_total\{direction="outbound",peer="site",method="GET",route="\/\{id\}\/Get",code="404"\} 1$/m);
});

t.test('gRPC service names a caller makes up stop at the route cap', async (t) => {
  for (let i = 0; i < 110; i++) await call(`/made.up${i}.v1.Svc${i}/Get`);
  const text = (await frontend.admin('/metrics')).body;
  const routes = new Set([...text.matchAll(/^meshcar_requests_total\{direction="outbound",peer="shop",[^}]*route="([^"]*)"/gm)].map((m) => m[1]));
  t.equal(routes.size, 101, `100 routes, then __other__ (${routes.size})`);
  t.ok(routes.has('__other__'));
});

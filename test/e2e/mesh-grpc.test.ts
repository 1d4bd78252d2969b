// Whole mesh, gRPC: a @grpc/grpc-js client (plain h2c to its sidecar) calls a @grpc/grpc-js
// server (plain h2c behind the other sidecar). Unary, bidirectional streaming, and error
// statuses with trailing metadata must arrive intact; a deadline ends the call at the client
// with DEADLINE_EXCEEDED, whichever timer fires first, and its cancellation reaches the server
// through both sidecars. The sidecars' own errors reach a gRPC client as gRPC statuses.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as unknown,
};

const SERVICE: grpc.ServiceDefinition = {
  Echo: { path: '/meshcar.test.Orders/Echo', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  Chat: { path: '/meshcar.test.Orders/Chat', requestStream: true, responseStream: true, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  Slow: { path: '/meshcar.test.Orders/Slow', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  Fail: { path: '/meshcar.test.Orders/Fail', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  // not served, and not allowed by the orders sidecar's policy: the sidecar refuses it first
  Secret: { path: '/meshcar.test.Vault/Secret', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
};

let ca: MeshCa;
let server: grpc.Server;
let orders: RunningSidecar;
let frontend: RunningSidecar;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
/** Slow calls the server saw cancelled (the deadline's RST_STREAM arrived through the mesh). */
const slowCancelled: number[] = [];

t.before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<{ text: string }, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const xfcc = call.metadata.get('x-forwarded-client-cert')[0];
      done(null, { text: call.request.text, caller: String(xfcc ?? '') });
    },
    Chat: (call: grpc.ServerDuplexStream<{ n: number }, unknown>) => {
      call.on('data', (message: { n: number }) => call.write({ n: message.n * 2 }));
      call.on('end', () => call.end());
    },
    Slow: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      // answers after 5 s unless cancelled first
      const started = Date.now();
      const timer = setTimeout(() => done(null, { late: true }), 5_000);
      call.on('cancelled', () => {
        clearTimeout(timer);
        slowCancelled.push(Date.now() - started);
      });
    },
    Fail: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const metadata = new grpc.Metadata();
      metadata.set('x-reason', 'order-missing');
      done({ code: grpc.status.NOT_FOUND, details: 'order 42 does not exist', metadata });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
  ca = await startMeshCa(t.testdir());
  const authorize = ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]', '      paths: [/meshcar.test.Orders/*]'].join('\n');
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `h2c://127.0.0.1:${port}`, authorize } });
  const ordersEndpoint = { endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' };
  // the same service under a second name whose timeout is shorter than the slow call
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', ...ordersEndpoint }, { name: 'orders-hurried', ...ordersEndpoint, timeout: '300ms' }] });
  client = clientFor('orders');
});

function clientFor(authority: string): typeof client {
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Orders');
  return new Client(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as typeof client;
}

function callFailing(on: typeof client, method: string, options: grpc.CallOptions = {}): Promise<grpc.ServiceError> {
  return new Promise<grpc.ServiceError>((resolve, reject) => {
    (on[method] as (req: unknown, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void)({}, options, (e) => (e ? resolve(e) : reject(new Error(`${method} succeeded`))));
  });
}
t.teardown(async () => {
  client?.close();
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]);
  await ca?.stop();
  server?.forceShutdown();
});

t.test('unary call, with the caller identity in XFCC', async (t) => {
  const answer = await new Promise<{ text: string; caller: string }>((resolve, reject) => {
    (client.Echo as (req: unknown, cb: (err: grpc.ServiceError | null, res: { text: string; caller: string }) => void) => void)({ text: 'hi' }, (err, res) => (err ? reject(err) : resolve(res)));
  });
  t.equal(answer.text, 'hi');
  t.match(answer.caller, /URI=spiffe:\/\/mesh\.local\/svc\/frontend/);
});

t.test('bidirectional streaming', async (t) => {
  const call = (client.Chat as () => grpc.ClientDuplexStream<{ n: number }, { n: number }>)();
  const received: number[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (m: { n: number }) => received.push(m.n));
    call.on('end', resolve);
    call.on('error', reject);
  });
  for (let n = 1; n <= 100; n++) call.write({ n });
  call.end();
  await done;
  t.equal(received.length, 100);
  t.equal(received[99], 200);
});

t.test('error status, message and trailing metadata arrive intact', async (t) => {
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    (client.Fail as (req: unknown, cb: (err: grpc.ServiceError | null) => void) => void)({}, (e) => resolve(e as grpc.ServiceError));
  });
  t.equal(err.code, grpc.status.NOT_FOUND);
  t.equal(err.details, 'order 42 does not exist');
  t.same(err.metadata.get('x-reason'), ['order-missing']);
});

t.test('a deadline: DEADLINE_EXCEEDED at the client, and the server sees the call cancelled', async (t) => {
  const started = Date.now();
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    (client.Slow as (req: unknown, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void)({}, { deadline: Date.now() + 400 }, (e) => resolve(e as grpc.ServiceError));
  });
  // the sidecars honour grpc-timeout too, to the millisecond, so their timer may win the race
  // with the client's own: they answer grpc-status 4, never an HTTP 504 (which grpc-js would
  // report as UNAVAILABLE)
  t.equal(err.code, grpc.status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED (code ${err.code}: ${err.details})`);
  t.ok(Date.now() - started < 3_000, `ended by the deadline (${Date.now() - started} ms), not by the server's 5 s`);
  const until = Date.now() + 4_000;
  while (slowCancelled.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(slowCancelled.length, 1, `the server saw the call cancelled after ${slowCancelled[0]} ms (the reset crossed both sidecars)`);
});

t.test("the sidecars' own errors are gRPC statuses, trailers-only, with x-meshcar-error", async (t) => {
  const hurried = clientFor('orders-hurried');
  const nowhere = clientFor('nowhere');
  t.teardown(() => {
    hurried.close();
    nowhere.close();
  });

  // no deadline from the client: the outbound's 300 ms upstream timeout ends the call
  const started = Date.now();
  const timeout = await callFailing(hurried, 'Slow');
  t.equal(timeout.code, grpc.status.DEADLINE_EXCEEDED, `the upstream timeout: DEADLINE_EXCEEDED (code ${timeout.code}: ${timeout.details})`);
  t.match(timeout.details, /300 ms/, 'grpc-message says what timed out');
  t.same(timeout.metadata.get('x-meshcar-error'), ['upstream_timeout']);
  t.ok(Date.now() - started < 3_000, `ended by the sidecar's timeout (${Date.now() - started} ms)`);

  const denied = await callFailing(client, 'Secret');
  t.equal(denied.code, grpc.status.PERMISSION_DENIED, `a path the policy does not allow: PERMISSION_DENIED (code ${denied.code}: ${denied.details})`);
  t.match(denied.details, /spiffe:\/\/mesh\.local\/svc\/frontend is not allowed/);
  t.same(denied.metadata.get('x-meshcar-error'), ['forbidden'], "the remote sidecar's code crosses the outbound unchanged");

  // metrics count what the errors stand for, not the 200 the gRPC callers got on the wire
  const frontendMetrics = (await frontend.admin('/metrics')).body;
  t.match(frontendMetrics, /meshcar_requests_total\{direction="outbound",peer="orders-hurried",method="POST",route="[^"]+",code="504"\} 1/, 'the outbound counts its own timeout as 504');
  t.match(frontendMetrics, /meshcar_requests_total\{direction="outbound",peer="orders",method="POST",route="[^"]+",code="403"\} 1/, "the outbound counts the remote sidecar's refusal as 403");
  t.match((await orders.admin('/metrics')).body, /meshcar_requests_total\{direction="inbound",peer="frontend",method="POST",route="[^"]+",code="403"\} 1/, 'the inbound counts its refusal as 403');

  const unrouted = await callFailing(nowhere, 'Echo');
  t.equal(unrouted.code, grpc.status.UNIMPLEMENTED, `no upstream named "nowhere": UNIMPLEMENTED (code ${unrouted.code}: ${unrouted.details})`);
  t.same(unrouted.metadata.get('x-meshcar-error'), ['no_route']);
});

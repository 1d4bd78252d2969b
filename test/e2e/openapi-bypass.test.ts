// The ways around an enforcing OpenAPI check a review found, each closed, on both sides of the
// mesh: a request that only claims to be gRPC (Content-Type application/grpc*), one that carries
// Upgrade: websocket to an app with no upgrade handler (it answers an ordinary request), and a
// query parameter given twice (frameworks read different copies). Inbound: straight to the
// orders sidecar (enforce) over mTLS as frontend, HTTP/1.1 and HTTP/2. Outbound: the app's
// calls to billing, whose own sidecar has no spec, so only frontend's check stands between.
// And real gRPC (grpc-js, unary and streaming) still crosses two enforcing sidecars when the
// spec lists its methods as POST operations.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { join, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { h2Connect, h2Request } from '../helpers/inbound-fixture.js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const ORDERS_SPEC = resolve('config/orders.openapi.yaml');
// gRPC methods are POST operations; a framed body (application/grpc) is not JSON: it streams unread
const CATALOG_SPEC = `openapi: 3.0.3
info: {title: catalog, version: "1"}
paths:
  /meshcar.test.Catalog/Echo:
    post:
      requestBody: {required: true, content: {application/grpc: {}}}
      responses: {"200": {description: ok}}
  /meshcar.test.Catalog/Chat:
    post:
      responses: {"200": {description: ok}}
`;
const EVIL = JSON.stringify({ item: '', qty: -5, evil: true });

const codec = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const method = (path: string, stream: boolean) => ({ path, requestStream: stream, responseStream: stream, requestSerialize: codec.serialize, requestDeserialize: codec.deserialize, responseSerialize: codec.serialize, responseDeserialize: codec.deserialize });
const CATALOG: grpc.ServiceDefinition = {
  Echo: method('/meshcar.test.Catalog/Echo', false),
  Chat: method('/meshcar.test.Catalog/Chat', true),
  // served, but not in the spec: an enforcing sidecar must not let it through
  Hidden: method('/meshcar.test.Catalog/Hidden', false),
};

let ca: MeshCa;
let app: http.Server;
let grpcServer: grpc.Server;
/** Every request the HTTP app received: "METHOD /path?query". */
const received: string[] = [];
const grpcCalls: string[] = [];
let orders: RunningSidecar;
let billing: RunningSidecar;
let catalog: RunningSidecar;
let frontend: RunningSidecar;
let mtls: tls.ConnectionOptions;

t.before(async () => {
  // no 'upgrade' listener: Node hands an Upgrade request to 'request', as an ordinary one
  app = http.createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('app'));
  });
  await new Promise<void>((done) => app.listen(0, '127.0.0.1', done));
  const appUrl = `http://127.0.0.1:${(app.address() as net.AddressInfo).port}`;
  grpcServer = new grpc.Server();
  grpcServer.addService(CATALOG, {
    Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => done(null, call.request),
    Chat: (call: grpc.ServerDuplexStream<{ n: number }, unknown>) => {
      call.on('data', (m: { n: number }) => call.write({ n: m.n * 2 }));
      call.on('end', () => call.end());
    },
    Hidden: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      grpcCalls.push('Hidden');
      done(null, {});
    },
  });
  const grpcPort = await new Promise<number>((ok, fail) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? fail(err) : ok(port))));
  ca = await startMeshCa(t.testdir());
  const catalogSpec = join(ca.dir, 'catalog.openapi.yaml');
  await writeFile(catalogSpec, CATALOG_SPEC);
  const enforce = (spec: string) => `{spec: ${spec}, mode: enforce}`;
  [orders, billing, catalog] = await Promise.all([
    startSidecar(ca, { service: 'orders', inbound: { app: appUrl, openapi: enforce(ORDERS_SPEC) } }),
    startSidecar(ca, { service: 'billing', inbound: { app: appUrl } }),
    startSidecar(ca, { service: 'catalog', inbound: { app: `h2c://127.0.0.1:${grpcPort}`, openapi: enforce(catalogSpec) } }),
  ]);
  const upstream = (name: string, port: number, spec: string) => ({ name, endpoints: [`127.0.0.1:${port}`], identity: `spiffe://mesh.local/svc/${name}`, openapi: enforce(spec) });
  frontend = await startSidecar(ca, { service: 'frontend', upstreams: [upstream('billing', billing.inboundPort, ORDERS_SPEC), upstream('catalog', catalog.inboundPort, catalogSpec)] });
  const id = await ca.issue('frontend');
  mtls = { cert: id.cert, key: id.key, ca: id.bundle, checkServerIdentity: () => undefined };
});
t.teardown(async () => {
  await Promise.all([frontend?.stop(), orders?.stop(), billing?.stop(), catalog?.stop()]);
  await ca?.stop();
  grpcServer?.forceShutdown();
  await new Promise((done) => app?.close(done));
});

interface RawResponse {
  status: number;
  error: string | undefined;
  /** A refusal to a gRPC-typed request is a gRPC status (HTTP 200), as for real gRPC callers. */
  grpcStatus: string | undefined;
  body: string;
}

/** Writes one HTTP/1.1 request exactly as given and reads the answer until the connection ends. */
function raw(socket: net.Socket, head: string, body = ''): Promise<RawResponse> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', fail);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const end = text.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const rest = text.slice(end + 4);
      const error = /^x-meshcar-error: (.*)$/im.exec(text.slice(0, end))?.[1]?.trim();
      const grpcStatus = /^grpc-status: (\d+)/im.exec(text)?.[1];
      done({ status, error, grpcStatus, body: /transfer-encoding: chunked/i.test(text.slice(0, end)) ? dechunk(rest) : rest });
    });
    socket.write(`${head.replace(/\n/g, '\r\n')}\r\n${body}`);
  });
}

function dechunk(text: string): string {
  let out = '';
  for (let at = 0; ; ) {
    const eol = text.indexOf('\r\n', at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 4 + size;
  }
}

/** As frontend, straight to the orders sidecar's inbound port (mTLS, HTTP/1.1). */
function inbound(head: string, body?: string, connection = 'close'): Promise<RawResponse> {
  const socket = tls.connect({ host: '127.0.0.1', port: orders.inboundPort, ALPNProtocols: ['http/1.1'], ...mtls });
  return raw(socket, `${head}\nHost: orders\nConnection: ${connection}\n`, body);
}

/** As frontend's app, to its sidecar's outbound port (plain HTTP/1.1), to billing. */
function outbound(head: string, body?: string, connection = 'close'): Promise<RawResponse> {
  return raw(net.connect(frontend.outboundPort, '127.0.0.1'), `${head}\nHost: billing\nConnection: ${connection}\n`, body);
}

/** A WebSocket handshake's head (Connection: Upgrade is added by the caller). */
const upgrade = (path: string) => `GET ${path} HTTP/1.1\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==`;

t.test('inbound: a gRPC Content-Type, an Upgrade or a repeated query parameter does not get past enforce', async (t) => {
  received.length = 0;
  t.match(await inbound('GET /admin/reset HTTP/1.1'), { status: 404, error: 'undocumented_operation' }, 'the undocumented operation, plain');
  // a gRPC-typed request is answered in gRPC's terms (200, grpc-status), as any refusal to one is
  t.match(await inbound('GET /admin/reset HTTP/1.1\nContent-Type: application/grpc'), { error: 'undocumented_operation', grpcStatus: '12' }, 'claiming gRPC over HTTP/1.1');
  const evil = (type: string) => inbound(`POST /orders HTTP/1.1\nContent-Type: ${type}\nIdempotency-Key: 12345678\nContent-Length: ${EVIL.length}`, EVIL);
  t.match(await evil('application/grpc+json'), { error: 'unsupported_media_type', grpcStatus: '3' }, 'a forbidden body sent as application/grpc+json');
  t.match(await evil('application/grpc'), { error: 'unsupported_media_type', grpcStatus: '3' }, 'and as application/grpc');
  const upgraded = await inbound(upgrade('/admin/reset'), undefined, 'Upgrade');
  t.match(upgraded, { status: 404, error: 'undocumented_operation' }, 'an Upgrade to an operation the spec lacks: the enforce answer');
  t.equal(JSON.parse(upgraded.body).message, 'GET /admin/reset is not an operation of the API', 'with the JSON error');
  const query = await inbound('GET /orders?status=open&limit=5&limit=1000 HTTP/1.1');
  t.same([query.status, JSON.parse(query.body).message], [400, 'query/limit: must be given once (it is not an array)'], 'a scalar query parameter given twice');

  // HTTP/2 (what a sidecar speaks): the same claims, the same answers
  const session = await h2Connect(orders.inboundPort, { ...mtls, ALPNProtocols: ['h2'] });
  t.teardown(() => session.close());
  const h2 = await h2Request(session, { ':method': 'GET', ':path': '/admin/reset', ':authority': 'orders', 'content-type': 'application/grpc', te: 'trailers' });
  t.match(h2.headers, { 'x-meshcar-error': 'undocumented_operation', 'grpc-status': '12' }, 'HTTP/2 with application/grpc and te: trailers, to an undocumented path');
  const h2Evil = await h2Request(session, { ':method': 'POST', ':path': '/orders', ':authority': 'orders', 'content-type': 'application/grpc+json', te: 'trailers', 'idempotency-key': '12345678' }, EVIL);
  t.match(h2Evil.headers, { 'x-meshcar-error': 'unsupported_media_type', 'grpc-status': '3' }, 'HTTP/2, a forbidden body as application/grpc+json');
  t.same(received, [], 'the app received none of them');

  // what the spec documents still passes, Upgrade or not
  t.match(await inbound(upgrade('/orders/42'), undefined, 'Upgrade'), { status: 200, body: 'app' }, 'a documented operation with Upgrade reaches the app');
  t.match(await inbound('GET /orders?status=open&limit=5 HTTP/1.1'), { status: 200 });
  t.same(received, ['GET /orders/42', 'GET /orders?status=open&limit=5']);
});

t.test("outbound: the app's call to an upstream with a spec is held the same way before it leaves", async (t) => {
  received.length = 0;
  t.match(await outbound('GET /admin/reset HTTP/1.1\nContent-Type: application/grpc'), { error: 'undocumented_operation', grpcStatus: '12' }, 'claiming gRPC over HTTP/1.1');
  t.match(await outbound(`POST /orders HTTP/1.1\nContent-Type: application/grpc+json\nIdempotency-Key: 12345678\nContent-Length: ${EVIL.length}`, EVIL), { error: 'unsupported_media_type', grpcStatus: '3' }, 'a forbidden body as application/grpc+json');
  const upgraded = await outbound(upgrade('/admin/reset'), undefined, 'Upgrade');
  t.match(upgraded, { status: 404, error: 'undocumented_operation' }, 'an Upgrade to an operation the spec lacks is refused before the tunnel opens');
  t.equal(JSON.parse(upgraded.body).message, 'GET /admin/reset is not an operation of the API');
  t.match(await outbound('GET /orders?status=open&limit=5&limit=1000 HTTP/1.1'), { status: 400, error: 'schema_violation' }, 'a scalar query parameter given twice');

  // an h2c app (gRPC clients are): the same claim, the same answer
  const session = http2.connect(`http://127.0.0.1:${frontend.outboundPort}`);
  t.teardown(() => session.close());
  const h2c = await h2Request(session, { ':method': 'GET', ':path': '/admin/reset', ':authority': 'billing', 'content-type': 'application/grpc', te: 'trailers' });
  t.match(h2c.headers, { 'x-meshcar-error': 'undocumented_operation', 'grpc-status': '12' }, 'h2c with application/grpc and te: trailers, to an undocumented path');
  t.same(received, [], 'billing (whose sidecar has no spec) received none of them');
  t.match(await outbound(upgrade('/orders/7'), undefined, 'Upgrade'), { status: 200, body: 'app' }, 'a documented operation with Upgrade is tunnelled');
  t.same(received, ['GET /orders/7']);
});

// a field the Connection header names is removed before the app sees it (RFC 9110 §7.6.1): the
// check judged the caller's head with it, and a required Idempotency-Key the app never got passed
// (a review)
t.test('a field named in Connection is judged as the app gets it: absent, on both sides', async (t) => {
  const good = JSON.stringify({ item: 'book', qty: 2 });
  const order = `POST /orders HTTP/1.1\nContent-Type: application/json\nIdempotency-Key: 12345678\nContent-Length: ${good.length}`;
  received.length = 0;
  t.match(await inbound(order, good), { status: 200, body: 'app' }, 'inbound: the order with its key passes');
  const inboundNamed = await inbound(order, good, 'close, idempotency-key');
  t.match(inboundNamed, { status: 400, error: 'schema_violation' }, 'inbound: the key named in Connection: refused as missing');
  t.match(inboundNamed.body, /idempotency-key/, 'naming the header');
  t.match(await outbound(order, good), { status: 200, body: 'app' }, 'outbound: the order with its key passes');
  t.match(await outbound(order, good, 'close, idempotency-key'), { status: 400, error: 'schema_violation' }, 'outbound: the key named in Connection: refused as missing');
  t.same(received, ['POST /orders', 'POST /orders'], 'the app received the two orders that kept their key, and only those');
});

t.test('real gRPC crosses two enforcing sidecars when the spec lists its methods; an unlisted one is refused', async (t) => {
  const Client = grpc.makeGenericClientConstructor(CATALOG, 'Catalog');
  const client = new Client(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'catalog' }) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  t.teardown(() => client.close());
  const unary = (name: string) =>
    new Promise<{ err: grpc.ServiceError | null; value: unknown }>((done) => (client[name] as (req: unknown, cb: (err: grpc.ServiceError | null, value: unknown) => void) => void)({ text: 'hi' }, (err, value) => done({ err, value })));
  const echo = await unary('Echo');
  t.same([echo.err, echo.value], [null, { text: 'hi' }], 'unary: a listed method (framed body, application/grpc) passes');

  const chat = (client.Chat as () => grpc.ClientDuplexStream<unknown, { n: number }>)();
  const answers: number[] = [];
  chat.on('data', (m: { n: number }) => answers.push(m.n));
  const ended = new Promise((done, fail) => (chat.on('end', done), chat.on('error', fail)));
  for (const n of [1, 2, 3]) chat.write({ n });
  chat.end();
  await ended;
  t.same(answers, [2, 4, 6], 'bidirectional streaming: the body streams, unread');

  const hidden = await unary('Hidden');
  t.equal(hidden.err?.code, grpc.status.UNIMPLEMENTED, 'a method the spec lacks: UNIMPLEMENTED (undocumented_operation)');
  t.match(hidden.err?.details, 'is not an operation of the API', "the sidecar's refusal, as a gRPC status with its message");
  t.same(grpcCalls, [], 'the server never saw it');
});

// Whole mesh, HTTP/1.1: app A → outbound sidecar → mTLS/HTTP/2 → inbound sidecar → app B, with
// real processes (`meshcar ca serve`, `meshcar run`), the real CA, and Node's HTTP client as app A.

import t from 'tap';
import https from 'node:https';
import net from 'node:net';
import { execFile } from 'node:child_process';
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import { startSidecar, metricValue, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { freePort } from '../helpers/process.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
let orders: RunningSidecar;
let frontend: RunningSidecar;

t.before(async () => {
  // one more path on the echo app: an answer full of connection-scoped headers
  const echo = mesh.app.server.listeners('request')[0] as RequestListener;
  mesh.app.server.removeAllListeners('request');
  mesh.app.server.on('request', (req, res) => {
    // as Express's res.sendStatus(205) does: a 205 with 13 bytes of content
    if (req.url === '/status/205-with-content') {
      res.writeHead(205, { 'content-type': 'text/plain', 'content-length': 13 });
      res.end('stray content');
      return;
    }
    if (req.url !== '/hop-by-hop') return echo(req, res);
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-app-hop', 'x-app-hop': 'leaked', 'keep-alive': 'timeout=77, max=9', 'proxy-connection': 'keep-alive', 'x-app': 'echo' });
    res.end('ok');
  });
  orders = await startSidecar(mesh.ca, {
    service: 'orders',
    inbound: {
      app: `http://127.0.0.1:${mesh.app.port}`,
      timeout: '1s',
      authorize: [
        '  authorize:',
        '    - from: [spiffe://mesh.local/svc/frontend]',
        '      methods: [GET, HEAD, POST, PUT]',
        '      paths: [/headers, /echo, /sink, /bytes/*, /status/*, /slow, /trailers, /hop-by-hop]',
      ].join('\n'),
    },
  });
  // an upstream endpoint nothing listens on (ghost): it must stay closed, so it cannot be bound
  const closedPort = await freePort();
  frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    upstreams: [
      { name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', routes: ['/bytes/{n}'] },
      { name: 'ghost', endpoints: [`127.0.0.1:${closedPort}`], identity: 'spiffe://mesh.local/svc/ghost' },
    ],
  });
});
t.teardown(() => Promise.all([frontend?.stop('SIGKILL'), orders?.stop()]));

const out = (options: Parameters<typeof request>[1]) => request(frontend.outboundPort, { ...options, headers: { host: 'orders', ...options.headers } });

t.test('a plain call crosses the mesh with mTLS identities', async (t) => {
  const res = await out({ path: '/headers', headers: { 'x-request-id': 'req-123', 'x-forwarded-client-cert': 'By=forged', connection: 'keep-alive, x-private', 'x-private': 'secret' } });
  t.equal(res.status, 200);
  const seen = JSON.parse(res.body.toString()).headers as Record<string, string>;
  t.match(seen['x-forwarded-client-cert'], /^By=spiffe:\/\/mesh\.local\/svc\/orders;Hash=[0-9a-f]{64};URI=spiffe:\/\/mesh\.local\/svc\/frontend$/, 'XFCC replaced by the inbound sidecar');
  t.equal(seen['x-request-id'], 'req-123', 'x-request-id passed through');
  t.notOk(seen['x-private'], 'headers named by Connection are dropped');
  t.equal(seen.host, 'orders', 'the app sees the Host the caller used');
  t.equal(res.headers['x-app'], 'echo');
  const generated = await out({ path: '/headers' });
  t.match(JSON.parse(generated.body.toString()).headers['x-request-id'], /^[\w-]{8,}$/, 'x-request-id generated when absent');
});

/** An HTTP/1.1 caller straight to the inbound sidecar over mTLS, as frontend. */
async function directHttp1(path: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const client = await mesh.ca.issue('frontend');
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: orders.inboundPort, path, cert: client.cert, key: client.key, ca: client.bundle, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined, headers: { connection: 'keep-alive' }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

t.test("the app's connection-scoped response headers do not leak, through the mesh or to an HTTP/1.1 caller", async (t) => {
  for (const [how, res] of [
    ['through the mesh', await out({ path: '/hop-by-hop', headers: { connection: 'keep-alive' } })],
    ['HTTP/1.1 caller', await directHttp1('/hop-by-hop')],
  ] as const) {
    t.equal(res.status, 200, `${how}: answered`);
    t.equal(res.headers['x-app'], 'echo', `${how}: the app's other headers pass`);
    t.equal(res.headers['x-app-hop'], undefined, `${how}: a header the app's Connection names is dropped`);
    t.notMatch(String(res.headers['keep-alive']), /77|max=9/, `${how}: the app's Keep-Alive does not leak (${res.headers['keep-alive']})`);
    t.equal(res.headers['proxy-connection'], undefined, `${how}: nor Proxy-Connection`);
    t.notMatch(String(res.headers.connection), /x-app-hop/, `${how}: nor the app's Connection`);
  }
});

t.test('absolute-form request URI routes like Host', async (t) => {
  const res = await request(frontend.outboundPort, { path: 'http://ORDERS/headers', headers: { host: 'whatever' } });
  t.equal(res.status, 200);
});

t.test('bodies: fixed-length and chunked, both ways', async (t) => {
  const fixed = Buffer.alloc(300_000, 7);
  const res = await out({ method: 'POST', path: '/echo', body: fixed, headers: { 'content-length': String(fixed.length) } });
  t.equal(res.status, 200);
  t.ok(res.body.equals(fixed), 'fixed-length body intact');
  const chunked = await out({ method: 'POST', path: '/echo', body: 'hello chunked world', headers: { 'transfer-encoding': 'chunked' } });
  t.equal(chunked.body.toString(), 'hello chunked world');
  const big = await out({ path: '/bytes/5000000' });
  t.equal(big.body.length, 5_000_000);
});

t.test('Expect: 100-continue is relayed', async (t) => {
  const res = await out({ method: 'PUT', path: '/sink', headers: { expect: '100-continue', 'content-length': '5' }, body: 'abcde', waitForContinue: true });
  t.ok(res.sawContinue, 'the client got 100 Continue');
  t.equal(res.status, 200);
  t.same(JSON.parse(res.body.toString()), { bytes: 5 });
});

t.test('HEAD, 204 and 304 carry no body', async (t) => {
  const head = await out({ method: 'HEAD', path: '/headers' });
  t.equal(head.status, 200);
  t.equal(head.body.length, 0);
  const none = await out({ path: '/status/204' });
  t.equal(none.status, 204);
  t.equal(none.body.length, 0);
  const cached = await out({ path: '/status/304', headers: { 'if-none-match': '"v1"' } });
  t.equal(cached.status, 304);
  t.equal(cached.headers.etag, '"v1"');
});

t.test('a 205 the app sends with content reaches the client as 205 with Content-Length 0, and the connection goes on', async (t) => {
  // review 31: relayed with the app's content-length and no body, it was an empty reply (meshcar
  // codec: the outbound cut the connection after the head) or a 502 (node codec)
  const url = `http://127.0.0.1:${frontend.outboundPort}`;
  const { code, out: text } = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile('curl', ['-sS', '-i', '--max-time', '10', '-H', 'Host: orders', `${url}/status/205-with-content`, `${url}/headers`], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
  t.equal(code, 0, `curl exits 0: ${text}`);
  t.match(text, /^HTTP\/1\.1 205 /, 'the 205');
  t.match(text, /content-length: 0\r\n/i, 'announced as empty');
  t.notMatch(text, /stray content/, 'its content dropped');
  t.match(text, /\r\n\r\nHTTP\/1\.1 200 /, 'the next answer on the same connection is whole');
});

t.test('response trailers survive', async (t) => {
  const res = await out({ path: '/trailers', headers: { te: 'trailers' } });
  t.equal(res.body.toString(), 'body');
  t.equal(res.trailers['x-checksum'], 'abc123');
});

t.test('an error the far sidecar answers to a HEAD reaches curl -I whole (its head, no body)', async (t) => {
  // review 28: the inbound's own error answers to HEAD carried their JSON body, which the
  // outbound refused (content-length mismatch, reset), retried twice, then answered 503; curl
  // over the pair saw an empty reply
  const { code, out: text } = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile('curl', ['-sS', '-I', '--max-time', '10', '-H', 'Host: orders', `http://127.0.0.1:${frontend.outboundPort}/admin`], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
  t.equal(code, 0, `curl exits 0: ${text}`);
  t.match(text, /^HTTP\/1\.1 403 /, 'the 403 the inbound answered');
  t.match(text, /x-meshcar-error: forbidden/i);
});

t.test('errors the sidecars answer themselves', async (t) => {
  const denied = await out({ method: 'DELETE', path: '/echo' });
  t.equal(denied.status, 403);
  t.equal(denied.headers['x-meshcar-error'], 'forbidden');
  t.equal(JSON.parse(denied.body.toString()).error, 'forbidden');
  t.ok(JSON.parse(denied.body.toString()).requestId, 'the error names the request id');
  const otherPath = await out({ path: '/admin' });
  t.equal(otherPath.status, 403, 'a path outside the policy');
  // the refusal counts as an error on both sides: the inbound that answered and the caller's outbound
  const deleteRow = async (sidecar: RunningSidecar, direction: string) =>
    (JSON.parse((await sidecar.admin('/endpoints')).body) as { endpoints: Array<Record<string, unknown>> }).endpoints.find((e) => e.direction === direction && e.method === 'DELETE' && e.route === '/echo');
  t.match(await deleteRow(orders, 'inbound'), { count: 1, errors: 1 }, 'inbound /endpoints');
  t.match(await deleteRow(frontend, 'outbound'), { count: 1, errors: 1 }, 'outbound /endpoints');
  t.match((await frontend.admin('/metrics')).body, /meshcar_request_errors_total\{direction="outbound",peer="orders",route="\/echo",reason="forbidden"\} 1/);

  const noRoute = await request(frontend.outboundPort, { path: '/x', headers: { host: 'nowhere' } });
  t.equal(noRoute.status, 404);
  t.equal(JSON.parse(noRoute.body.toString()).error, 'no_route');
  t.equal(noRoute.headers['x-meshcar-error'], 'no_route');

  const ghost = await request(frontend.outboundPort, { path: '/x', headers: { host: 'ghost' } });
  t.equal(ghost.status, 503);
  t.equal(JSON.parse(ghost.body.toString()).error, 'upstream_unavailable');

  const slow = await out({ path: '/slow' });
  t.equal(slow.status, 504);
  t.equal(JSON.parse(slow.body.toString()).error, 'upstream_timeout');
});

t.test('a header block over the limit gets 431, and the sidecar keeps serving', async (t) => {
  const huge = await out({ path: '/headers', headers: { 'x-big': 'y'.repeat(20_000) } });
  t.equal(huge.status, 431);
  t.equal((await out({ path: '/headers' })).status, 200);
});

t.test('garbage on the outbound port does not crash the sidecar', async (t) => {
  await new Promise<void>((resolve) => {
    const raw = net.connect(frontend.outboundPort, '127.0.0.1', () => raw.end('NOT HTTP AT ALL\r\n\r\n'));
    raw.on('close', () => resolve());
    raw.on('error', () => resolve());
    raw.resume();
  });
  t.equal((await out({ path: '/headers' })).status, 200);
});

t.test('concurrent calls share one HTTP/2 session', async (t) => {
  const results = await Promise.all(Array.from({ length: 50 }, () => out({ path: '/headers' })));
  t.ok(results.every((r) => r.status === 200));
  const metrics = (await frontend.admin('/metrics')).body;
  t.equal(metricValue(metrics, 'meshcar_upstream_sessions{upstream="orders"}'), 1, 'one session to orders');
});

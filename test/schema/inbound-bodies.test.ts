// The inbound schema layer's body path, caller by caller: HTTP/1.1 (Content-Length, chunked,
// Expect: 100-continue) and HTTP/2 on both codecs. A JSON body is read, validated and then
// reaches the app byte for byte; a body over maxBodySize is 413 at once in enforce mode
// (by Content-Length) or after maxBodySize bytes (chunked), and forwarded whole in shadow.

import t from 'tap';
import https from 'node:https';
import { resolve } from 'node:path';
import type tls from 'node:tls';
import { loadGuard } from '../../src/schema/guard.js';
import { h1Request, h2Connect, h2Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';

const SPEC = resolve('config/orders.openapi.yaml');
const HEAD = { 'content-type': 'application/json', 'idempotency-key': 'idem-0001' };

async function fixture(t: Tap, mode: 'shadow' | 'enforce', codec?: 'meshcar' | 'node'): Promise<{ f: InboundFixture; tls: tls.ConnectionOptions }> {
  const f = await startInbound(codec ? { codec } : {});
  t.teardown(() => f.close());
  f.inbound.setSchema(await loadGuard({ spec: SPEC, mode, maxBodySize: 1024 }));
  return { f, tls: await f.tlsOptions() };
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** An HTTP/1.1 request with a chunked body written in pieces, optionally waiting for 100 Continue. */
function chunked(port: number, tlsOptions: tls.ConnectionOptions, pieces: string[], expectContinue = false): Promise<{ status: number; body: string; sawContinue: boolean }> {
  return new Promise((done, fail) => {
    let sawContinue = false;
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/orders', headers: { ...HEAD, ...(expectContinue ? { expect: '100-continue' } : {}) }, agent: false, ALPNProtocols: ['http/1.1'], ...(tlsOptions as https.RequestOptions) } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sawContinue }));
      },
    );
    req.on('error', fail);
    const send = () => {
      for (const p of pieces) req.write(p);
      req.end();
    };
    if (expectContinue) {
      req.on('continue', () => {
        sawContinue = true;
        send();
      });
      req.flushHeaders();
    } else send();
  });
}

const order = JSON.stringify({ item: 'book', qty: 3, note: 'ünïcode' });

t.test('HTTP/1.1, enforce: bodies validated before the app; valid ones arrive intact', async (t) => {
  const { f, tls } = await fixture(t, 'enforce');
  const ok = await h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: HEAD, body: order });
  t.equal(ok.status, 200);
  t.equal(JSON.parse(ok.body).body, order, 'Content-Length body, byte for byte');
  const bad = await h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: HEAD, body: JSON.stringify({ item: 'book', qty: 0 }) });
  t.equal(bad.status, 400);
  t.same(JSON.parse(bad.body).message, 'body/qty: must be >= 1');

  const pieces = [order.slice(0, 5), order.slice(5, 17), order.slice(17)];
  const viaChunks = await chunked(f.port, tls, pieces);
  t.equal(viaChunks.status, 200);
  t.equal(JSON.parse(viaChunks.body).body, order, 'chunked body, reassembled');
  const continued = await chunked(f.port, tls, [order], true);
  t.equal(continued.status, 200);
  t.ok(continued.sawContinue, 'Expect: 100-continue: the sidecar asks for the body it must read');
  t.equal(JSON.parse(continued.body).body, order);

  const big = JSON.stringify({ item: 'book', qty: 1, note: 'x'.repeat(1500) });
  const declared = await h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: HEAD, body: big });
  t.equal(declared.status, 413, 'Content-Length over maxBodySize: 413');
  const streamed = await chunked(f.port, tls, [big.slice(0, 800), big.slice(800)]);
  t.equal(streamed.status, 413, 'chunked past maxBodySize: 413');
  t.equal(JSON.parse(streamed.body).error, 'body_too_large');
  await f.observer.waitForRequests(6);
  t.same(f.observer.requests.filter((r) => r.schema?.violation).map((r) => r.schema?.violation?.kind), ['body', 'body', 'body']);
});

t.test('HTTP/1.1, shadow: an oversized chunked body is forwarded whole', async (t) => {
  const { f, tls } = await fixture(t, 'shadow');
  const big = JSON.stringify({ item: 'book', qty: 1, note: 'y'.repeat(5000) });
  const res = await chunked(f.port, tls, [big.slice(0, 700), big.slice(700, 3000), big.slice(3000)]);
  t.equal(res.status, 200);
  t.equal(JSON.parse(res.body).body, big, 'what was read, then the rest of the stream');
  const bad = await h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: HEAD, body: '{"qty":' });
  t.equal(bad.status, 200, 'invalid JSON is forwarded in shadow');
  await f.observer.waitForRequests(2);
  t.match(f.observer.requests.at(-1)?.schema, { route: '/orders', violation: { kind: 'body', message: /^body: is not valid JSON/ } });
});

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`HTTP/2 (${codec} codec), enforce`, async (t) => {
    const { f, tls } = await fixture(t, 'enforce', codec);
    const session = await h2Connect(f.port, tls);
    t.teardown(() => session.close());
    const post = (body: string) => h2Request(session, { ':method': 'POST', ':path': '/orders', ...HEAD }, body);
    const ok = await post(order);
    t.equal(ok.status, 200);
    t.equal(JSON.parse(ok.body.toString()).body, order);
    const bad = await post(JSON.stringify({ item: '', qty: 1 }));
    t.equal(bad.status, 400);
    t.equal(JSON.parse(bad.body.toString()).message, 'body/item: must NOT have fewer than 1 characters');
    const big = await post(JSON.stringify({ item: 'b', qty: 1, note: 'z'.repeat(3000) }));
    t.equal(big.status, 413);
    const get = await h2Request(session, { ':method': 'GET', ':path': '/orders/12' });
    t.equal(get.status, 200, 'a call without a body schema streams as before');
  });
}

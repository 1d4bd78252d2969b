// When the inbound's timeout for the app's response head runs (review-grpc finding 2): from the
// end of the caller's request body (at once for a bodiless request), as Envoy's route timeout;
// an upload slower than the timeout is the idle timeout's to guard. The caller's own deadline
// (grpc-timeout, x-request-timeout) still counts from the request's arrival. `timeout` 0 (and a
// route's 0) sets no head deadline. HTTP/1.1 and HTTP/2 callers;
// codec-meshcar-head-timeout-start.test.ts runs this file again with the meshcar server codec.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import { h1Request, h2Connect, startInbound } from '../helpers/inbound-fixture.js';
import { trickle } from '../helpers/trickle.js';

/** /upload: answers once the whole body arrived; /late/<ms>: <ms> after it arrived; /slow/<ms>: after <ms>, body or not. */
function app(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  const late = /\/late\/(\d+)/.exec(url);
  const slow = /\/slow\/(\d+)/.exec(url);
  if (slow) setTimeout(() => res.end('late'), Number(slow[1]));
  else req.on('end', () => setTimeout(() => res.end(String(bytes)), late ? Number(late[1]) : 0));
}

const CHUNK = Buffer.alloc(512, 97);

interface Trickled {
  status: number;
  body: string;
  error: string | undefined;
  bodyEndedAt: number;
  answeredAt: number;
  startedAt: number;
}

/** An HTTP/1.1 upload: `chunks` chunks, one every `everyMs`. */
function trickleH1(port: number, tlsOptions: tls.ConnectionOptions, path: string, chunks: number, everyMs: number, headers: Record<string, string> = {}): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    let bodyEndedAt = 0;
    const req = https.request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent: false, ALPNProtocols: ['http/1.1'], ...(tlsOptions as https.RequestOptions) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, error: res.headers['x-meshcar-error'] as string | undefined, bodyEndedAt, answeredAt: Date.now(), startedAt }));
    });
    // an answer before the end of the upload may cut it: the answer says what happened
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    trickle(req, chunks, everyMs, () => (bodyEndedAt = Date.now()));
  });
}

/** The same on an HTTP/2 session. */
function trickleH2(session: http2.ClientHttp2Session, path: string, chunks: number, everyMs: number, headers: Record<string, string> = {}): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    let bodyEndedAt = 0;
    const stream = session.request({ ':method': 'POST', ':path': path, ...headers });
    let head: http2.IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => resolve({ status: Number(head[':status']), body, error: head['x-meshcar-error'] as string | undefined, bodyEndedAt, answeredAt: Date.now(), startedAt }));
    stream.on('error', reject);
    trickle(stream, chunks, everyMs, () => (bodyEndedAt = Date.now()));
  });
}

t.test('an upload slower than the timeout, with steady progress, reaches the app and is answered', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 300 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const h1 = await trickleH1(fx.port, tlsOptions, '/upload', 10, 100);
  t.equal(h1.status, 200, `HTTP/1.1: answered after ${h1.answeredAt - h1.startedAt} ms (${h1.error ?? h1.body})`);
  t.equal(h1.body, String(10 * CHUNK.length));
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const h2 = await trickleH2(session, '/upload', 10, 100);
  t.equal(h2.status, 200, `HTTP/2: answered after ${h2.answeredAt - h2.startedAt} ms (${h2.error ?? h2.body})`);
  t.equal(h2.body, String(10 * CHUNK.length));
});

t.test('the body ends and the app answers late: the 504 comes the timeout after the end of the body', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 300 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  for (const [name, run] of [
    ['HTTP/1.1', () => trickleH1(fx.port, tlsOptions, '/late/5000', 6, 100)],
    ['HTTP/2', () => trickleH2(session, '/late/5000', 6, 100)],
  ] as const) {
    const r = await run();
    t.equal(r.status, 504, `${name}: 504`);
    t.equal(r.error, 'upstream_timeout');
    t.ok(r.bodyEndedAt > 0, `${name}: the 504 came after the whole body was sent`);
    const afterEnd = r.answeredAt - r.bodyEndedAt;
    t.ok(afterEnd >= 270 && afterEnd < 2_000, `${name}: 504 ${afterEnd} ms after the end of the body (${r.answeredAt - r.startedAt} ms in all)`);
  }
});

t.test("the caller's own deadline still counts from the request's arrival, upload or not", async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 5000 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const r = await trickleH1(fx.port, tlsOptions, '/upload', 20, 100, { 'x-request-timeout': '400ms' });
  t.equal(r.status, 504, 'an upload outliving the caller deadline: 504');
  t.equal(r.error, 'upstream_timeout');
  const took = r.answeredAt - r.startedAt;
  t.ok(took >= 380 && took < 1_900, `ended by the caller's 400 ms after ${took} ms, not after its 2 s upload`);
});

t.test('timeout 0, inbound-wide or per route: no deadline for the head', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 200 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  fx.inbound.setTimeouts({ timeoutMs: 200, routes: [{ path: '/watch/*', timeoutMs: 0 }] });
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/watch/slow/600' })).status, 200, 'a route with timeout 0: answered after 600 ms');
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/other/slow/600' })).status, 504, 'another path keeps its 200 ms');
  fx.inbound.setTimeouts({ timeoutMs: 0, idleTimeoutMs: 400 });
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/slow/250' })).status, 200, 'inbound timeout 0: answered after 250 ms');
  const started = Date.now();
  const silent = await h1Request(fx.port, tlsOptions, { path: '/slow/5000' });
  const took = Date.now() - started;
  t.equal(silent.status, 504, 'the idle timeout still holds');
  t.match(silent.body, /no bytes moved either way for 400 ms/);
  t.ok(took >= 380 && took < 3_000, `cut after ${took} ms`);
});

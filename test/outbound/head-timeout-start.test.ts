// When the upstream's `timeout` runs (review-grpc finding 2, 7): from the end of the app's
// request body, as Envoy's route timeout, not from its arrival; an upload slower than the
// timeout is the idle timeout's to guard. `timeout` 0 sets no response-head deadline. The
// upstream is told the shorter of the app's own deadline and the sidecar's limit when the
// request has no body or its body has ended (and on retries); while the upload is still in
// progress, the app's own deadline alone. HTTP/1.1 and h2c apps (both forwarders);
// codec-node-head-timeout-start.test.ts runs this file again on Node's HTTP/2 codec toward the
// upstream (this one runs on the default, meshcar's own).

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { appIdentity, defaultHandler, echo, makePki, RecordingObserver, request, silent, startUpstream, TD, UPSTREAM_ID, type Echo, type H2Handler } from '../helpers/outbound-fixture.js';
import type { TestPki } from '../helpers/pki.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { createOutbound } from '../../src/outbound/index.js';
import { trickle } from '../helpers/trickle.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

async function start(t: TapTest, pki: TestPki, port: number, timeoutMs: number, idleTimeoutMs?: number) {
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        { name: 'payments', endpoints: [parseEndpoint(`127.0.0.1:${port}`) as Endpoint], identity: UPSTREAM_ID, timeoutMs, routes: [], ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) },
      ],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer: new RecordingObserver(),
    ...(process.env.MESHCAR_TEST_H2_CODEC === 'meshcar' ? { codec: 'meshcar' as const } : {}),
  });
  const bound = await outbound.listen();
  t.teardown(() => outbound.close());
  return bound.port;
}

/** /late/<ms>: reads the whole body, then answers <ms> after its end; anything else: the default upstream. */
const lateAfterBody: H2Handler = (stream, headers, flags) => {
  const path = String(headers[':path']);
  if (!path.startsWith('/late/')) return defaultHandler(stream, headers, flags);
  stream.on('error', () => {});
  let bytes = 0;
  stream.on('data', (c: Buffer) => (bytes += c.length));
  stream.on('end', () => {
    const timer = setTimeout(() => {
      if (stream.closed || stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(String(bytes));
    }, Number(path.slice('/late/'.length)));
    stream.once('close', () => clearTimeout(timer));
  });
};

const CHUNK = Buffer.alloc(512, 97);

/** An HTTP/1.1 upload of `chunks` chunks, one every `everyMs`; resolves with the answer and when the body ended. */
function trickleHttp1(port: number, path: string, chunks: number, everyMs: number): Promise<{ status: number; body: string; bodyEndedAt: number; answeredAt: number }> {
  return new Promise((resolve, reject) => {
    let bodyEndedAt = 0;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: { host: 'payments' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, bodyEndedAt, answeredAt: Date.now() }));
    });
    req.on('error', reject);
    trickle(req, chunks, everyMs, () => (bodyEndedAt = Date.now()));
  });
}

/** The same over h2c, as a gRPC client-streaming call is sent. */
function trickleH2c(port: number, path: string, chunks: number, everyMs: number): Promise<{ status: number; body: string; headers: http2.IncomingHttpHeaders; bodyEndedAt: number; answeredAt: number }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    let bodyEndedAt = 0;
    const stream = session.request({ ':method': 'POST', ':path': path, ':authority': 'payments', 'content-type': 'application/grpc' });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), body, headers, bodyEndedAt, answeredAt: Date.now() });
    });
    stream.on('error', (err) => {
      session.close();
      reject(err);
    });
    trickle(stream, chunks, everyMs, () => (bodyEndedAt = Date.now()));
  });
}

t.test('an upload slower than the timeout, with steady progress, is answered (HTTP/1.1 and h2c apps)', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: lateAfterBody });
  t.teardown(() => up.close());
  const port = await start(t, pki, up.port, 300);
  // 10 chunks 100 ms apart: about a second of upload, three times the timeout
  const h1 = await trickleHttp1(port, '/late/0', 10, 100);
  t.equal(h1.status, 200, `HTTP/1.1: answered (${h1.body})`);
  t.equal(h1.body, String(10 * CHUNK.length), 'the whole body reached the upstream');
  const h2 = await trickleH2c(port, '/late/0', 10, 100);
  t.equal(h2.status, 200, `h2c: answered (${h2.headers['x-meshcar-error'] ?? ''})`);
  t.equal(h2.body, String(10 * CHUNK.length));
});

t.test('the body ends and the answer is late: the 504 comes the timeout after the end of the body', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: lateAfterBody });
  t.teardown(() => up.close());
  const port = await start(t, pki, up.port, 300);
  const started = Date.now();
  const h1 = await trickleHttp1(port, '/late/5000', 6, 100);
  t.equal(h1.status, 504, 'HTTP/1.1: 504');
  t.match(h1.body, /within 300 ms/);
  t.ok(h1.bodyEndedAt > 0, `the 504 came after the whole body was sent (${h1.bodyEndedAt - started} ms into the request)`);
  const afterEnd = h1.answeredAt - h1.bodyEndedAt;
  // the clock starts when the sidecar has the end of the body, no sooner than the client sent it
  t.ok(afterEnd >= 270 && afterEnd < 2_000, `HTTP/1.1: 504 ${afterEnd} ms after the end of the body`);
  const h2 = await trickleH2c(port, '/late/5000', 6, 100);
  t.equal(h2.headers['grpc-status'], '4', 'h2c gRPC: DEADLINE_EXCEEDED');
  t.equal(h2.headers['x-meshcar-error'], 'upstream_timeout');
  const h2AfterEnd = h2.answeredAt - h2.bodyEndedAt;
  t.ok(h2.bodyEndedAt > 0 && h2AfterEnd >= 270 && h2AfterEnd < 2_000, `h2c: DEADLINE_EXCEEDED ${h2AfterEnd} ms after the end of the body`);
});

t.test('timeout 0: no response-head deadline; the idle timeout still cuts a silent upstream', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  t.teardown(() => up.close());
  const port = await start(t, pki, up.port, 0, 400);
  t.equal((await request(port, { path: '/slow/250' })).status, 200, 'answered after 250 ms: no deadline fired');
  const started = Date.now();
  const res = await request(port, { path: '/slow/5000' });
  const took = Date.now() - started;
  t.equal(res.status, 504, 'silent past the idle timeout: 504');
  t.match(res.json<{ message: string }>().message, /nothing within 400 ms/);
  t.ok(took >= 380 && took < 3_000, `cut by the idle timeout after ${took} ms`);
  t.equal((await request(port, { path: '/echo', headers: { 'x-request-timeout': '60s' } })).json<Echo>().headers['x-request-timeout'], '60s', 'with no limit of ours, the app deadline passes on as it came');
});

/** A handler that notes each request's deadline fields as its head arrives, then echoes it. */
function noteDeadlines(seen: Map<string, string | undefined>): H2Handler {
  return (stream, headers, flags) => {
    const path = String(headers[':path']);
    if (!path.startsWith('/note/')) return defaultHandler(stream, headers, flags);
    seen.set(path, (headers['grpc-timeout'] ?? headers['x-request-timeout']) as string | undefined);
    echo(stream, headers);
  };
}

/** Resolves once `seen` has `path` (the upstream has the request's head), within 5 s. */
async function headSeen(seen: Map<string, string | undefined>, path: string): Promise<string | undefined> {
  const until = Date.now() + 5_000;
  while (!seen.has(path)) {
    if (Date.now() > until) throw new Error(`the upstream never saw ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return seen.get(path);
}

t.test("a request with no body tells the upstream the shorter of the app's deadline and the sidecar's limit", async (t) => {
  const pki = await makePki(TD);
  const seen = new Map<string, string | undefined>();
  const up = await startUpstream(pki, { handler: noteDeadlines(seen) });
  t.teardown(() => up.close());
  const port = await start(t, pki, up.port, 1000);
  await request(port, { path: '/note/h1', headers: { 'x-request-timeout': '60s' } });
  const h1 = seen.get('/note/h1');
  t.match(h1, /^\d+ms$/, `x-request-timeout rewritten: ${h1}`);
  t.ok(Number(String(h1).slice(0, -2)) <= 1000, `the upstream is told at most the sidecar's 1000 ms (${h1})`);
  await request(port, { path: '/note/short', headers: { 'x-request-timeout': '500ms' } });
  t.equal(seen.get('/note/short'), '500ms', 'a shorter app deadline goes as it came');

  // a gRPC call with no body (END_STREAM on its HEADERS)
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.teardown(() => session.close());
  await new Promise<void>((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':authority': 'payments', ':path': '/note/grpc', 'grpc-timeout': '60S', 'content-type': 'application/grpc' }, { endStream: true });
    s.on('error', reject);
    s.on('end', resolve);
    s.resume();
  });
  const grpc = seen.get('/note/grpc');
  t.match(grpc, /^\d+m$/, `grpc-timeout rewritten: ${grpc}`);
  t.ok(Number(String(grpc).slice(0, -1)) <= 1000, `the gRPC upstream is told at most 1000 ms (${grpc})`);
});

// review-diff-s7 B2: our timeout starts at the end of the body, but the upstream sidecar counts
// the field from the head's arrival: a limit of ours in it would cut an upload we let run
t.test("a request whose upload is still in progress passes the app's deadline on unchanged", async (t) => {
  const pki = await makePki(TD);
  const seen = new Map<string, string | undefined>();
  const up = await startUpstream(pki, { handler: noteDeadlines(seen) });
  t.teardown(() => up.close());
  const port = await start(t, pki, up.port, 1000);

  // gRPC client-streaming over h2c: the head goes, the body follows once the upstream has it
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.teardown(() => session.close());
  const s = session.request({ ':method': 'POST', ':authority': 'payments', ':path': '/note/grpc-upload', 'grpc-timeout': '60S', 'content-type': 'application/grpc' });
  const grpcDone = new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('end', resolve);
  });
  s.resume();
  s.write(Buffer.from([0, 0, 0, 0, 1, 120]));
  t.equal(await headSeen(seen, '/note/grpc-upload'), '60S', "the gRPC upstream is told the caller's 60S, not the sidecar's 1000 ms");
  s.end(Buffer.from([0, 0, 0, 0, 0]));
  await grpcDone;

  // HTTP/1.1 with a chunked upload in progress
  const http1Done = new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/note/h1-upload', headers: { host: 'payments', 'x-request-timeout': '60s' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(CHUNK);
    headSeen(seen, '/note/h1-upload').then(() => req.end(CHUNK), reject);
  });
  t.equal(await headSeen(seen, '/note/h1-upload'), '60s', "the HTTP/1.1 upstream is told the caller's 60s");
  t.equal(await http1Done, 200, 'answered once the upload ended');
});

// Downloads that the reader holds back, while the request had no body: Node's http2 server
// resets a stream whose request nobody read with RST_STREAM(NO_ERROR) as soon as its answer is
// handed to nghttp2, and nghttp2 sends that reset ahead of the answer's END_STREAM (and of DATA)
// still waiting for the reader's window. Two places met it:
// - the inbound on `http2.codec: node` is such a server toward the caller's outbound: a whole
//   chunked answer lost its end and the outbound reset it toward the app (19 of 30 here);
// - an h2c app on Node's server does it toward the inbound: a whole answer of a Content-Length
//   was taken for a cut one (the reset came before END_STREAM) and reset toward the caller.
// 30 downloads of 4 MiB at once, each read only after 200 ms; every one must come whole, with
// its end. (An h2c app's answer without a Content-Length, overtaken by such a reset, may really
// be short: it is still reset, never passed off as whole; see the last test.)

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { startPairToApp } from '../helpers/pair-to-app.js';
import { endedEarly, watchEarlyEnd } from '../../src/http/early-end.js';
import { callOwedTrailers, resetBeforeTrailers } from '../helpers/trailers-owed.js';

const SIZE = 4 << 20;
const N = 30;
const BODY = Buffer.alloc(SIZE, 7);
// the h2c apps hold 30 answers of 4 MiB at once: past Node's default session memory (10 MB) its
// server resets streams with ENHANCE_YOUR_CALM
const APP_OPTIONS = { maxSessionMemory: 1000 };

/** The body in 256 KiB writes, each after the last drained, then end() on its own: the END_STREAM goes as a frame of its own, after the window. */
function pump(res: http.ServerResponse | http2.Http2ServerResponse): void {
  let at = 0;
  const more = (): void => {
    while (at < SIZE) {
      const chunk = BODY.subarray(at, (at += 256 << 10));
      if (!(res as http.ServerResponse).write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
}

/** N downloads through the outbound at once, each read from 200 ms after its head: "end BYTES" or how it stopped, counted. */
async function heldDownloads(t: Tap.Test, port: number): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: N });
  t.teardown(() => agent.destroy());
  const one = () =>
    new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/download', agent, headers: { host: 'orders' } }, (res) => {
        let bytes = 0;
        res.pause();
        setTimeout(() => {
          res.on('data', (chunk: Buffer) => (bytes += chunk.length));
          res.resume();
        }, 200);
        res.on('end', () => resolve(`end ${bytes}`));
        res.on('aborted', () => resolve(`aborted ${bytes}`));
        res.on('error', () => resolve(`error ${bytes}`));
      });
      req.on('error', (err) => resolve(`request error ${err.message}`));
    });
  const counts = new Map<string, number>();
  for (const outcome of await Promise.all(Array.from({ length: N }, one))) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return counts;
}

/** The same over one h2c connection to the outbound (as an app on Node's http2 client): "end BYTES" only with the outbound's END_STREAM. */
async function heldH2cDownloads(t: Tap.Test, port: number): Promise<Map<string, number>> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const one = () =>
    new Promise<string>((resolve) => {
      const stream = watchEarlyEnd(session.request({ ':path': '/download', host: 'orders' }));
      let bytes = 0;
      stream.on('response', () => {
        stream.pause();
        setTimeout(() => {
          stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
          stream.resume();
        }, 200);
      });
      stream.on('end', () => resolve(endedEarly(stream) ? `reset NO_ERROR before END_STREAM ${bytes}` : `end ${bytes}`));
      stream.on('error', () => resolve(`error ${bytes}`));
    });
  const counts = new Map<string, number>();
  for (const outcome of await Promise.all(Array.from({ length: N }, one))) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return counts;
}

async function listening<S extends http.Server | http2.Http2Server>(t: Tap.Test, server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

t.test('http2.codec node: an HTTP/1.1 app\'s chunked answers reach held readers whole', async (t) => {
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(BODY);
  });
  const { outbound } = await startPairToApp(t, await listening(t, app), 'node');
  const counts = await heldDownloads(t, outbound.port);
  t.same([...counts], [[`end ${SIZE}`, N]], 'every download whole, with its end');
});

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`http2.codec ${codec}: an h2c app on Node's server, answers with a Content-Length, reach held readers whole`, async (t) => {
    const app = http2.createServer(APP_OPTIONS, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
      pump(res);
    });
    const { outbound } = await startPairToApp(t, await listening(t, app), codec, 'h2c');
    t.same([...(await heldDownloads(t, outbound.port))], [[`end ${SIZE}`, N]], 'every download whole, with its end (HTTP/1.1 readers)');
    t.same([...(await heldH2cDownloads(t, outbound.port))], [[`end ${SIZE}`, N]], 'every download whole, with its END_STREAM (h2c readers on one connection)');
  });
}

t.test('an h2c app\'s answer without a Content-Length, cut by such a reset: never passed off as whole', async (t) => {
  const app = http2.createServer(APP_OPTIONS, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    pump(res);
  });
  const { outbound } = await startPairToApp(t, await listening(t, app), 'meshcar', 'h2c');
  const counts = await heldDownloads(t, outbound.port);
  for (const [outcome, count] of counts) t.notMatch(outcome, /^end (?!4194304$)/, `no short body with a clean end (${outcome}: ${count})`);
});

// The length is no proof for an answer whose trailers were still due: a gRPC status, or fields a
// `trailer` head field announced. Node's server never resets before them; an app that does cut
// them off, and its caller must not read the answer as whole.
t.test('an h2c app\'s answer of its whole Content-Length, reset before the trailers it owed: still a cut', async (t) => {
  const app = http2.createServer();
  app.on('stream', resetBeforeTrailers);
  const { outbound } = await startPairToApp(t, await listening(t, app), 'meshcar', 'h2c');
  const session = http2.connect(`http://127.0.0.1:${outbound.port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const call = (path: string, contentType?: string) => callOwedTrailers(session, 'orders', path, contentType);
  t.equal(await call('/checksum'), 'reset', 'an answer that announced trailers: reset toward the caller');
  const grpcOutcome = await call('/grpc', 'application/grpc');
  t.ok(grpcOutcome === 'reset' || /^end grpc-status [1-9]/.test(grpcOutcome), `a gRPC answer: a reset or a failing status, never a status-less end (${grpcOutcome})`);
});

// An h2c app that resets a stream with NO_ERROR before any answer (Node's stream.close() before
// respond(): RST_STREAM NO_ERROR alone, which RFC 9113 §8.1 allows only after a complete
// response) has answered nothing: the caller gets a 502 (upstream_reset) at once. Before, Node's
// http2 client ended the unanswered stream's readable side itself and the inbound took that for
// no news: the exchange waited for the route's timeout (a 504), or with an unfinished upload for
// the idle timeout. Both caller codecs; a GET, a whole upload and one still being sent.

import t from 'tap';
import { once } from 'node:events';
import type http2 from 'node:http2';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

// a failure would show as a 504 after these, not as a hang
const TIMEOUT_MS = 4_000;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an h2c app's RST_STREAM NO_ERROR before any answer is a 502 at once`, async (t) => {
    let handled = 0;
    const fx = await startInbound({
      codec,
      timeoutMs: TIMEOUT_MS,
      idleTimeoutMs: TIMEOUT_MS,
      app: {
        protocol: 'h2c',
        handler: (stream) => {
          handled++;
          stream.on('error', () => {});
          stream.close(0);
        },
      },
    });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    const shapes = [
      { path: '/get', method: 'GET', send: (req: http2.ClientHttp2Stream) => req.end() },
      { path: '/whole-upload', method: 'POST', send: (req: http2.ClientHttp2Stream) => req.end(Buffer.alloc(10_000, 97)) },
      { path: '/unfinished-upload', method: 'POST', send: (req: http2.ClientHttp2Stream) => req.write(Buffer.alloc(10_000, 97)) },
    ];
    for (const [i, shape] of shapes.entries()) {
      const started = performance.now();
      const req = session.request({ ':method': shape.method, ':path': shape.path });
      req.on('error', () => {});
      shape.send(req);
      const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      await once(req, 'close');
      const tookMs = performance.now() - started;
      t.equal(head[':status'], 502, `${shape.path}: a 502 (${body})`);
      t.match(body, /"error":"upstream_reset"/, `${shape.path}: named a reset before an answer`);
      t.ok(tookMs < TIMEOUT_MS / 2, `${shape.path}: at once, not at a timeout (${Math.round(tookMs)} ms)`);
      await waitFor(async () => fx.observer.requests.length === i + 1 && fx.inbound.inFlight === 0, 3_000, `${shape.path} recorded and out of flight`).catch(() => undefined);
      t.same(fx.observer.requests.slice(-1).map((r) => [r.path, r.status, r.errorCode ?? null]), [[shape.path, 502, 'upstream_reset']], `${shape.path}: recorded as the app's reset`);
      t.equal(fx.inbound.inFlight, 0, `${shape.path}: nothing left in flight`);
    }
    t.equal(handled, 3, 'the app saw each request');
  });
}

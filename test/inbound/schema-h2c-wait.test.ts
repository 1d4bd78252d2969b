// A request whose JSON body the schema check reads (openapi enforce) and that then waits for a
// stream to an h2c app at its stream limit keeps its route timeout. The check hands the app a
// replacement of the body it read; the head timer took that unread replacement for a body
// still coming and, once the request had its stream, waited for an end that had long come:
// only the idle timeout (5 min by default) ended a request the app never answered (review 28
// M3). Both HTTP/2 codecs of the inbound's server.

import t from 'tap';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../h2/fixtures/h2-helpers.js';

const SPEC = resolve('config/orders.openapi.yaml');
const TIMEOUT_MS = 300;
const ORDER = JSON.stringify({ item: 'book', qty: 3 });

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a schema-checked body that waited for the app's stream still gets its 504 at the route timeout`, async (t) => {
    // one stream at a time; /orders/1 is held open by the test, /orders is never answered
    const held: Array<() => void> = [];
    const seen: string[] = [];
    const server = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      stream.resume();
      const path = String(headers[':path']);
      seen.push(path);
      if (path === '/orders/1') {
        stream.respond({ ':status': 200 });
        stream.write('streaming');
        held.push(() => stream.end());
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    t.teardown(() => server.close());
    const fx = await startInbound({ codec, timeoutMs: TIMEOUT_MS, externalApp: { protocol: 'h2c', port: (server.address() as { port: number }).port } });
    t.teardown(() => fx.close());
    fx.inbound.setSchema(await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 1024 }));
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());

    const first = h2Request(caller, { ':method': 'GET', ':path': '/orders/1' });
    await waitFor(() => held.length === 1, 'the app holds the first request');
    const pool = (fx.inbound.app as unknown as { pool: { waiters: { size: number } } }).pool;
    const started = Date.now();
    const order = h2Request(caller, { ':method': 'POST', ':path': '/orders', 'content-type': 'application/json', 'idempotency-key': 'idem-0001' }, ORDER);
    await waitFor(() => pool.waiters.size === 1, 'the order waits for a stream');
    held[0]!(); // the slot frees well within the route timeout: the order gets its stream
    await waitFor(() => seen.includes('/orders'), 'the app has the order');
    const answer = await Promise.race([order, new Promise<undefined>((done) => setTimeout(done, 3000))]);
    const tookMs = Date.now() - started;
    t.equal(answer?.status, 504, `504 (after ${tookMs} ms), not left to the idle timeout`);
    t.equal(answer?.headers['x-meshcar-error'], 'upstream_timeout');
    t.ok(tookMs < TIMEOUT_MS + 1500, `about the route timeout of ${TIMEOUT_MS} ms after the body's end (${tookMs} ms)`);
    t.equal((await first).status, 200);
  });
}

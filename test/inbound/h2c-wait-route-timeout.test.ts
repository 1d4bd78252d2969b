// A request with a body that waits for a stream to an h2c app (the app's stream limit reached)
// is bounded by the route's timeout, as a bodiless one is. The head timer starts at the end of
// the request body, and a waiting request's body is held (paused) until it has a stream, so
// the end never came: with no deadline of the caller's own, only the idle timeout (5 min by
// default) ended the wait, and gRPC calls, which always have a body, filled the queue. Once the
// request has its stream, its body flows and the route's timeout starts at its end again: an
// upload slower than the timeout is not cut. Both HTTP/2 codecs of the inbound's server.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const TIMEOUT_MS = 300;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a waiting request with a body gets its 504 at the route timeout; once it has its stream, the timeout starts at its body's end`, async (t) => {
    // the app allows one stream; /first gets a streaming answer the test ends, so its slot stays
    // taken; every other request is answered when its body ends
    const held: Array<() => void> = [];
    const seen: string[] = [];
    const server = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const path = String(headers[':path']);
      seen.push(path);
      if (path === '/first') {
        stream.resume();
        stream.respond({ ':status': 200 });
        stream.write('streaming');
        held.push(() => stream.end());
        return;
      }
      let size = 0;
      stream.on('data', (c: Buffer) => (size += c.length));
      stream.on('end', () => {
        if (!stream.closed) stream.respond({ ':status': 200 });
        stream.end(`${path} got ${size}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => server.close());
    const fx = await startInbound({ codec, timeoutMs: TIMEOUT_MS, externalApp: { protocol: 'h2c', port: (server.address() as { port: number }).port } });
    t.teardown(() => fx.close());
    const pool = (fx.inbound.app as unknown as { pool: { waiters: { size: number } } }).pool;
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    const waitUntil = async (what: string, ok: () => boolean, ms = 5000) => {
      for (const until = Date.now() + ms; !ok(); ) {
        if (Date.now() > until) throw new Error(`not reached: ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    const first = h2Request(caller, { ':method': 'POST', ':path': '/first' }, 'a');
    await waitUntil('the app holds the first request', () => held.length === 1);

    // a POST waiting for the slot: no deadline of its own, a one-byte body
    const started = Date.now();
    const bodied = await Promise.race([
      h2Request(caller, { ':method': 'POST', ':path': '/bodied' }, 'x'),
      new Promise<undefined>((resolve) => setTimeout(resolve, 3000)),
    ]);
    const tookMs = Date.now() - started;
    t.ok(bodied !== undefined, `the bodied waiter is answered (after ${tookMs} ms)`);
    t.equal(bodied?.status, 504, 'with 504');
    t.equal(bodied?.headers['x-meshcar-error'], 'upstream_timeout');
    t.ok(tookMs >= TIMEOUT_MS - 50 && tookMs < TIMEOUT_MS + 1000, `at about the route timeout of ${TIMEOUT_MS} ms (${tookMs} ms)`);
    t.equal(pool.waiters.size, 0, 'and it left the queue');
    t.notOk(seen.includes('/bodied'), 'the app never saw it');

    // a POST that waits, gets its stream in time, then sends the rest of its body slower than
    // the route's timeout: the timeout runs from its body's end, not from its wait
    const slow = caller.request({ ':method': 'POST', ':path': '/slow' }, { endStream: false });
    const chunks: Buffer[] = [];
    let status: number | undefined;
    slow.on('response', (h) => (status = Number(h[':status'])));
    slow.on('data', (c: Buffer) => chunks.push(c));
    slow.on('error', () => {});
    const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    slow.write('b');
    const queuedAt = Date.now();
    await waitUntil('the slow upload waits for the slot', () => pool.waiters.size === 1);
    held[0]?.(); // the first answer ends: its slot goes to the waiting upload
    await waitUntil('the app has the slow upload', () => seen.includes('/slow'));
    t.equal(status, undefined, 'no answer yet');
    // past twice the route's timeout counted from the wait: a timer from then would have fired
    await waitUntil('twice the route timeout has passed since the upload was queued', () => Date.now() - queuedAt >= 2 * TIMEOUT_MS);
    slow.end('c');
    await Promise.race([closed, waitUntil('the slow upload is answered', () => false, 5000)]);
    t.equal(`${status} ${Buffer.concat(chunks).toString()}`, '200 /slow got 2', 'the slow upload is answered by the app, whole');
    t.equal((await first).status, 200);
  });
}

// Bodies are streamed with backpressure, never buffered. (1) An app that stops reading halts
// the caller: its writes stop being accepted after what socket buffers hold, and stay stopped.
// (2) A 20 MB echo arrives byte for byte while the process holds little of it alive at any
// time. Both caller protocols.

// test-run: own process (it measures this process's heap)
import t, { type Test } from 'tap';
import https from 'node:https';
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { h2Connect, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';

const MB = 1024 * 1024;
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CHUNK = 64 * 1024;
// a few fixed chunks, reused: the test itself allocates nothing per chunk
const PATTERNS = [0, 1, 2, 3].map((n) => Buffer.alloc(CHUNK, 0x41 + n));

/** The heap and the buffers outside it: what is alive, plus garbage not yet collected. */
function heldBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/**
 * A full collection whose freed buffers are counted: V8 frees array buffers' memory on a
 * background sweep that the next collection waits for, hence two.
 */
function collect(): void {
  gc();
  gc();
}

/**
 * Samples, every 25 ms until stopped, how much more than at the start this process holds
 * alive. Garbage not yet collected (RSS's noise, which the allocator returns late or never)
 * does not count: a sample over `limit` is taken again after a full collection, so a body
 * held anywhere on its way counts and litter does not. (A collection on every sample would
 * cost the transfer most of its time on a loaded machine.)
 */
function sampleLiveGrowth(limit: number) {
  collect();
  const baseline = heldBytes();
  let collected = 0; // the largest growth measured after a collection
  const sample = () => {
    if (heldBytes() - baseline <= limit) return;
    collect();
    collected = Math.max(collected, heldBytes() - baseline);
  };
  const timer = setInterval(sample, 25);
  return {
    /** The largest growth over `limit` that a collection did not explain away, else 0. */
    stop: () => {
      clearInterval(timer);
      return collected > limit ? collected : 0;
    },
  };
}

/** Uploads held by /stall?held until the test calls releaseStalled(). */
const stalled = new Set<IncomingMessage>();
function releaseStalled(): void {
  for (const req of stalled) req.resume();
  stalled.clear();
}

/**
 * /stall?ms=N: reads nothing for N ms (default 1200), then discards the body; /stall?held: the
 * same until releaseStalled() (a timer could end the stall in the middle of a measurement on
 * a loaded machine); else echoes it.
 */
function app(req: IncomingMessage, res: ServerResponse): void {
  if (req.url?.startsWith('/stall')) {
    req.pause();
    const query = new URL(req.url, 'http://x').searchParams;
    if (query.has('held')) stalled.add(req);
    else setTimeout(() => req.resume(), Number(query.get('ms') ?? 1200)).unref();
    req.on('end', () => res.end());
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  req.pipe(res);
}

type Kind = 'http1' | 'http2';

/** Opens an upload of the given kind; resolves with the writable and a handle on the response. */
async function openUpload(fx: InboundFixture, kind: Kind, path: string, t: Test) {
  const tlsOptions = await fx.tlsOptions();
  let body: Writable;
  let response: Promise<{ bytes: number; hash: string }>;
  const hash = createHash('sha256');
  let bytes = 0;
  const onData = (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  };
  if (kind === 'http1') {
    const req = https.request({ host: '127.0.0.1', port: fx.port, method: 'POST', path, agent: false, ...tlsOptions } as https.RequestOptions);
    req.on('error', () => {});
    response = new Promise((resolve, reject) => {
      req.on('response', (res) => {
        res.on('data', onData);
        res.on('end', () => resolve({ bytes, hash: hash.digest('hex') }));
        res.on('error', reject);
      });
    });
    body = req;
  } else {
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': path });
    stream.on('error', () => {});
    response = new Promise((resolve, reject) => {
      stream.on('data', onData);
      stream.on('end', () => resolve({ bytes, hash: hash.digest('hex') }));
      stream.on('error', reject);
    });
    body = stream;
  }
  response.catch(() => {});
  return { body, response };
}

/** Writes up to `total` bytes as fast as the writable takes them; `accepted()` tells how far it got. */
function pump(body: Writable, total: number) {
  let accepted = 0;
  let stop = false;
  const hash = createHash('sha256');
  const done = (async () => {
    for (let i = 0; accepted < total && !stop; i++) {
      const chunk = PATTERNS[i % PATTERNS.length] as Buffer;
      hash.update(chunk);
      accepted += chunk.length;
      if (!body.write(chunk)) {
        // one wait's listeners go with it: a 'close' left behind per 'drain' piles up
        await new Promise<void>((resolve) => {
          const settle = () => {
            body.off('drain', settle).off('close', settle);
            resolve();
          };
          body.once('drain', settle).once('close', settle);
        });
      }
    }
    if (!stop) body.end();
    return hash.digest('hex');
  })();
  return { accepted: () => accepted, hash: done, stop: () => (stop = true) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (polling, up to `maxMs`) until the sender has taken nothing more for `quietMs`: held
 * back by backpressure. Returns what it had taken then; a sender never held runs out the clock
 * (or its 256 MB) and the caller's assertions say so.
 */
async function heldAt(sender: { accepted(): number }, quietMs = 300, maxMs = 10_000): Promise<number> {
  const start = Date.now();
  let last = sender.accepted();
  let since = Date.now();
  while (Date.now() - start < maxMs) {
    await sleep(25);
    const now = sender.accepted();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (now > 0 && Date.now() - since >= quietMs) return now;
  }
  return sender.accepted();
}

t.test('an app that stops reading stops the caller', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app } });
  t.teardown(() => fx.close());
  for (const kind of ['http1', 'http2'] as const) {
    const { body } = await openUpload(fx, kind, '/stall?held', t);
    const sender = pump(body, 256 * MB);
    // held: nothing more taken for 300 ms (however long the machine needs to get there)
    const first = await heldAt(sender);
    await sleep(400); // a further stretch in which a held caller stays held
    const second = sender.accepted();
    sender.stop();
    body.destroy();
    // a sidecar that buffered would have taken all 256 MB by now; socket buffers hold some MB
    t.ok(second < 64 * MB, `${kind}: the caller was held at ${(second / MB).toFixed(1)} MB`);
    t.ok(second - first < MB, `${kind}: and stayed held (${(first / MB).toFixed(1)} → ${(second / MB).toFixed(1)} MB)`);
  }
  // HTTP/2: the caller's RST_STREAM ends the exchange at once. HTTP/1.1: a connection held
  // back by backpressure is not read, so its close is noticed once the app reads again.
  releaseStalled();
  for (let i = 0; i < 60 && fx.inbound.inFlight > 0; i++) await sleep(50);
  t.equal(fx.inbound.inFlight, 0, 'the abandoned uploads were cleaned up');
  const records = await fx.observer.waitForRequests(2);
  t.same(records.map((r) => r.errorCode), ['reset', 'reset'], 'and reported as resets');
});

t.test("an HTTP/2 caller's reset cancels a stalled upload at once", async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app } });
  t.teardown(() => fx.close());
  const { body } = await openUpload(fx, 'http2', '/stall?ms=10000', t);
  const sender = pump(body, 256 * MB);
  const held = await heldAt(sender);
  t.ok(held > 0 && held < 64 * MB, 'the upload is held back');
  sender.stop();
  body.destroy();
  // "at once": well before the stall's 10 s; polled, so a loaded machine is not a failure
  const resetAt = Date.now();
  while (fx.inbound.inFlight > 0 && Date.now() - resetAt < 3000) await sleep(10);
  t.equal(fx.inbound.inFlight, 0, 'the exchange ended although its buffered body was never read');
  t.same(fx.observer.requests.map((r) => [r.path, r.errorCode, r.status]), [['/stall', 'reset', 499]], "recorded as 499, the caller's own leaving (as the outbound records it)");
});

t.test('a 20 MB echo streams through intact, holding little of it at any time', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app } });
  t.teardown(() => fx.close());
  const LIVE_LIMIT = 8 * MB;
  const run = async (kind: Kind, total: number) => {
    const sampler = sampleLiveGrowth(LIVE_LIMIT);
    const { body, response } = await openUpload(fx, kind, '/echo', t);
    const sent = await pump(body, total).hash;
    const received = await response;
    return { sent, received, growth: sampler.stop() };
  };
  // a listener added per chunk while the caller's side is full (a leak of closures that Node
  // only warns about) shows as this warning
  const leakWarnings: string[] = [];
  const onWarning = (w: Error) => void (w.name === 'MaxListenersExceededWarning' && leakWarnings.push(w.message));
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  // warm-up (TLS, JIT), so the measured runs show the pipeline's own holding
  await run('http1', 2 * MB);
  await run('http2', 2 * MB);
  for (const kind of ['http1', 'http2'] as const) {
    const { sent, received, growth } = await run(kind, 20 * MB);
    t.equal(received.bytes, 20 * MB, `${kind}: all 20 MB came back`);
    t.equal(received.hash, sent, `${kind}: byte for byte`);
    // caller, sidecar and app share this process: socket and stream buffers hold a few MB
    // between them; a sidecar that did not stream would hold a large part of the 20 MB
    t.equal(growth, 0, `${kind}: never more than ${LIVE_LIMIT / MB} MB more held alive (over it: ${(growth / MB).toFixed(1)} MB)`);
  }
  // warnings are emitted on the next tick
  await new Promise((resolve) => setImmediate(resolve));
  t.same(leakWarnings, [], 'one drain listener per wait on the caller\'s side, never one per chunk');
});

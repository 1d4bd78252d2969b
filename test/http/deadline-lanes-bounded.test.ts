// Deadlines the caller chooses (grpc-timeout, x-request-timeout: a new value on every request)
// leave no timer behind once their requests are answered. The deadline queue keeps a lane and
// one timer per duration; a lane emptied by its requests' ends stayed, with its timer, until
// that timer ran, as late as 24.8 days: 50,000 answered requests held 50,000 timers and +26 MB
// of heap in a sidecar. Now at most MAX_IDLE_LANES empty lanes stay. Real inbound (in this
// process, so its timers are counted here) over real mutual TLS, real HTTP/2 client; and the
// outbound the same way from a raw HTTP/1.1 app.

import t from 'tap';
import { MAX_IDLE_LANES } from '../../src/http/deadline-queue.js';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { request, startOutboundToUpstream } from '../helpers/outbound-fixture.js';

// the timers armed for an hour or more that are still pending, counted as the process makes
// them (the real setTimeout does the work; this only watches): deadlines of 10,000+ hours
const LONG_MS = 3_600_000;
const pendingLong = new Set<unknown>();
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
globalThis.setTimeout = function watchedSetTimeout(this: unknown, fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) {
  if (typeof ms !== 'number' || ms < LONG_MS) return realSetTimeout.call(this, fn, ms, ...args);
  const timer = realSetTimeout.call(
    this,
    (...a: unknown[]) => {
      pendingLong.delete(timer);
      fn(...a);
    },
    ms,
    ...args,
  );
  pendingLong.add(timer);
  return timer;
} as typeof setTimeout;
globalThis.clearTimeout = function watchedClearTimeout(timer?: Parameters<typeof clearTimeout>[0]) {
  pendingLong.delete(timer);
  realClearTimeout(timer);
} as typeof clearTimeout;

const REQUESTS = 600;

t.test('inbound: 600 POSTs from a peer, each with its own grpc-timeout; once answered, at most the idle lanes keep a timer', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.close());
  const before = pendingLong.size;
  for (let i = 0; i < REQUESTS; i += 20) {
    const batch = Array.from({ length: 20 }, (_, j) =>
      h2Request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain', 'grpc-timeout': `${10_000 + i + j}H` }, 'hello'),
    );
    for (const res of await Promise.all(batch)) if (res.status !== 200) t.fail(`a request answered ${res.status}`);
  }
  t.ok(pendingLong.size - before <= MAX_IDLE_LANES, `${pendingLong.size - before} long timers left for ${REQUESTS} distinct deadlines, at most ${MAX_IDLE_LANES}`);
});

t.test('outbound: 600 POSTs from the app, each with its own x-request-timeout; once answered, at most the idle lanes keep a timer', async (t) => {
  const { fx } = await startOutboundToUpstream(t);
  const before = pendingLong.size;
  for (let i = 0; i < REQUESTS; i += 20) {
    const batch = Array.from({ length: 20 }, (_, j) => request(fx.port, { method: 'POST', path: '/echo', body: 'hello', headers: { host: 'payments', 'x-request-timeout': `${36_000 + i + j}s` } }));
    for (const res of await Promise.all(batch)) if (res.status !== 200) t.fail(`a request answered ${res.status}`);
  }
  t.ok(pendingLong.size - before <= MAX_IDLE_LANES, `${pendingLong.size - before} long timers left for ${REQUESTS} distinct deadlines, at most ${MAX_IDLE_LANES}`);
});

// Retry timing and spread: the budget that keeps an outage from multiplying load, Retry-After
// (delays, bounds, forms that are not one), a retry sent to the other endpoint, h2c callers,
// and the pure helpers (backoff, budget, Retry-After, the app's deadline headers). Real mTLS
// upstreams on loopback, counting what they saw (test/helpers/retry-fixture.ts).

import tap from 'tap';
import http2 from 'node:http2';
import { waitFor } from '../helpers/mesh.js';
import { defaultHandler, makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { appDeadlineMs, backoffMs, retryAfterMs, RetryBudget } from '../../src/outbound/retry.js';
import { flaky, h2, startRetryOutbound as start } from '../helpers/retry-fixture.js';

const t = tap;

/** An endpoint answering every request with `failing`'s handler beside a healthy one, behind an outbound retrying once; all closed at the test's end. */
async function failingBesideHealthy(t: Parameters<Parameters<typeof tap.test>[0]>[0], failing: ReturnType<typeof flaky>) {
  const pki = await makePki(TD);
  const bad = await startUpstream(pki, { handler: failing });
  const good = await startUpstream(pki);
  t.teardown(async () => {
    await bad.close();
    await good.close();
  });
  const fx = await start(t, pki, { endpoints: [bad.port, good.port], retries: { attempts: 1, budgetMinPerSecond: 1000 } });
  return { bad, good, fx };
}

t.test('a full outage: the extra load stays within the budget', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1e9, 503) });
  t.teardown(() => up.close());
  // no time-based reserve (budgetMinPerSecond 0): the bound is 20% of the requests, however
  // long the run takes on a loaded machine
  const fx = await start(t, pki, { endpoints: [up.port], retries: { attempts: 2, budgetRatio: 0.2, budgetMinPerSecond: 0 } });
  const total = 200;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < total) {
        next += 1;
        statuses.push((await request(fx.port)).status);
      }
    }),
  );
  t.equal(statuses.length, total);
  t.ok(statuses.every((s) => s === 503));
  const extra = up.requests - total;
  // every request earns 0.2 of a retry and the budget is spent as soon as a whole one is there:
  // 40 in all, less what was still unspent when the last requests came (under 2)
  t.ok(extra <= 0.2 * total, `retries ${extra} ≤ 20% of ${total} (unbudgeted: ${2 * total})`);
  t.ok(extra >= 0.2 * total - 2, `and the budget was used (${extra} retries)`);
  t.equal(fx.observer.retries.length, extra, 'each retry reported');
  // a request asks for a second retry only if its first was granted: every request whose first
  // retry was refused counted one exhaustion, at most one per request
  t.ok(fx.observer.exhausted >= total - extra && fx.observer.exhausted <= total, `budget exhaustion counted (${fx.observer.exhausted})`);
});

t.test('Retry-After: 1 on a 429 delays the retry by about a second', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 429, { 'retry-after': '1' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const started = Date.now();
  const res = await request(fx.port);
  const took = Date.now() - started;
  t.equal(res.status, 200);
  t.equal(up.requests, 2);
  t.ok(took >= 950 && took < 2500, `waited ${took} ms`);
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_429:success']);
});

t.test('a Retry-After in none of the RFC forms is no Retry-After: the backoff applies, and the request is retried', async (t) => {
  const pki = await makePki(TD);
  // Date.parse reads this as 1 Jan 2099: a wait past any deadline, so the 503 went back at once
  const up = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': '2099-01-01' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 2000 });
  const res = await request(fx.port);
  t.equal(res.status, 200, 'retried after the backoff');
  t.equal(up.requests, 2);
  t.same(fx.observer.retries.map((r) => `${r.reason}:${r.outcome}`), ['status_503:success']);
});

t.test('a Retry-After beyond the deadline returns the 429 at once', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 429, { 'retry-after': '10' }) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 2000 });
  const started = Date.now();
  const res = await request(fx.port);
  t.equal(res.status, 429);
  t.equal(res.headers['retry-after'], '10', 'relayed as the upstream sent it');
  // the 10-s wait would exceed the 2-s deadline; the first request includes a handshake
  t.ok(Date.now() - started < 1_500, `no wait (${Date.now() - started} ms)`);
  t.equal(up.requests, 1);
  const date = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() }) });
  t.teardown(() => date.close());
  const fx2 = await start(t, pki, { endpoints: [date.port], timeoutMs: 2000 });
  t.equal((await request(fx2.port)).status, 503, 'an HTTP date a minute away: same');
  t.equal(date.requests, 1);
});

t.test('without a deadline, a Retry-After longer than the idleTimeout returns the 503 at once', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(1, 503, { 'retry-after': '3600' }) });
  t.teardown(() => up.close());
  // timeout 0: no deadline; the wait was bounded by nothing (an hour, review-up L3)
  const fx = await start(t, pki, { endpoints: [up.port], timeoutMs: 0, idleTimeoutMs: 2000 });
  const started = Date.now();
  const res = await request(fx.port);
  t.equal(res.status, 503);
  t.equal(res.headers['retry-after'], '3600', 'relayed as the upstream sent it');
  t.ok(Date.now() - started < 1_500, `no wait (${Date.now() - started} ms)`);
  t.equal(up.requests, 1);
});

t.test('a retry goes to the other endpoint', async (t) => {
  const { bad, good, fx } = await failingBesideHealthy(t, flaky(1e9, 503));
  // concurrent requests: plain round-robin would send some retries back to the bad endpoint
  const results = await Promise.all(Array.from({ length: 20 }, () => request(fx.port)));
  t.same(
    results.map((r) => r.status),
    Array(20).fill(200),
  );
  t.equal(good.requests, 20, 'every request was answered by the good endpoint');
  t.ok(bad.requests >= 1 && bad.requests <= 20);
});

// the outbound review: one replica answering 503 with Retry-After: 5 held the GETs it failed
// for 5 s although their retries went to a healthy replica; a Retry-After is that endpoint's
t.test("a retry that can go to another endpoint waits the backoff, not the failed endpoint's Retry-After", async (t) => {
  const { bad, fx } = await failingBesideHealthy(t, flaky(1e9, 503, { 'retry-after': '5' }));
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 20 }, () => request(fx.port)));
  t.same(
    results.map((r) => r.status),
    Array(20).fill(200),
  );
  t.ok(bad.requests >= 1, `the failing replica was tried (${bad.requests})`);
  t.ok(Date.now() - started < 2_500, `no request waited the 5 s (${Date.now() - started} ms for all 20)`);
});

// the outbound review: maxRequests 2, one slow request in flight, a GET answered 429 with
// Retry-After: 1; a new request took the slot during the wait, and the retry found the circuit
// full: the app got the sidecar's 503 circuit_open in place of the upstream's answer. Its second
// review: holding the slot for the wait instead shut healthy requests out for whole
// Retry-After waits. A retry is let past maxRequests; new requests are judged as ever.
t.test('a retry is not refused for maxRequests, and a request arriving during its wait is not either', async (t) => {
  const pki = await makePki(TD);
  let seen = 0;
  const up = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      seen += 1;
      if (headers[':path'] === '/slow') return void setTimeout(() => defaultHandler(stream, headers, flags), 2_500);
      if (seen === 2) {
        stream.on('error', () => {});
        stream.resume();
        return void stream.respond({ ':status': 429, 'retry-after': '1' }, { endStream: true });
      }
      defaultHandler(stream, headers, flags);
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], circuitBreaker: { maxRequests: 2, maxPending: 1024 } });
  const slow = request(fx.port, { path: '/slow' });
  await waitFor(async () => seen === 1, 5_000, 'the slow request in flight (answered in 2.5 s)');
  const retried = request(fx.port);
  // the GET's 429 came back and its retry waits a second (GET /upstreams shows it)
  await waitFor(async () => fx.outbound.upstreams()[0]?.retrying === 1, 5_000, 'the retry waiting');
  const meanwhile = request(fx.port, { path: '/slow' });
  t.equal((await retried).status, 200, "the retried GET gets the upstream's answer to its retry, past the two in flight");
  t.equal((await meanwhile).status, 200, 'the request arriving during the wait was let in');
  t.equal((await slow).status, 200);
  t.notOk(fx.outbound.upstreams()[0]?.retrying, 'no retry left waiting');
});

// the third review: with every retry let past maxRequests, 100 app loops retrying 429s had 87
// requests open at the upstream at once against maxRequests 2 (the budget bounds retries per
// second, not how many run at once); retries may go past it by a fifth, at least 3
t.test('retries go past maxRequests by a bounded headroom only', { timeout: 30_000 }, async (t) => {
  const pki = await makePki(TD);
  let limiting = true;
  let open = 0;
  let most = 0;
  const up = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      stream.on('error', () => {});
      if (limiting) {
        stream.resume();
        return void stream.respond({ ':status': 429, 'retry-after': '1' }, { endStream: true });
      }
      open += 1;
      most = Math.max(most, open);
      setTimeout(() => {
        open -= 1;
        defaultHandler(stream, headers, flags);
      }, 1_500);
    },
  });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port], circuitBreaker: { maxRequests: 2, maxPending: 1024 }, retries: { attempts: 2, budgetMinPerSecond: 1000 } });
  const stopAt = performance.now() + 1_000;
  const loops = Array.from({ length: 30 }, async () => {
    while (performance.now() < stopAt) await request(fx.port);
  });
  // the retries of the 429s answered in the first second come after it, to a holding upstream
  await waitFor(async () => performance.now() >= stopAt - 200, 5_000, 'most of the limiting second');
  limiting = false;
  await Promise.all(loops);
  await waitFor(async () => fx.outbound.upstreams()[0]?.retrying === undefined && open === 0, 5_000, 'every retry done');
  t.ok(most > 2, `retries went past maxRequests 2 (${most} open at once)`);
  t.ok(most <= 2 + 3, `by the headroom of 3 at most (${most} open at once)`);
});

// a 429's rate limit may be shared by every replica: its Retry-After is waited even when the
// retry goes elsewhere (retries sent at once met the shared limiter still empty: the second review)
t.test("a 429's Retry-After is waited even when the retry can go to another endpoint", async (t) => {
  const { bad: limited, fx } = await failingBesideHealthy(t, flaky(1e9, 429, { 'retry-after': '1' }));
  // until one request meets the limited endpoint first: its retry goes to the other after a second
  for (let i = 0; i < 40 && limited.requests === 0; i++) {
    const started = Date.now();
    const res = await request(fx.port);
    t.equal(res.status, 200);
    if (limited.requests > 0) t.ok(Date.now() - started >= 900, `the retry waited the second (${Date.now() - started} ms)`);
  }
  t.ok(limited.requests > 0, 'the limited endpoint was met');
});

t.test('with three endpoints, the second retry goes to the one not tried yet, not back to the first', async (t) => {
  const pki = await makePki(TD);
  const fastA = await startUpstream(pki, { handler: flaky(1e9, 503) });
  const fastB = await startUpstream(pki, { handler: flaky(1e9, 503) });
  // a slow 503 (600 ms) makes this one the costliest: before, only the last endpoint was
  // avoided, and the second retry went back to the first one tried, cheaper than this
  const answer503 = flaky(1e9, 503);
  const slow = await startUpstream(pki, { handler: (stream, headers, flags) => void setTimeout(() => answer503(stream, headers, flags), 600) });
  t.teardown(() => Promise.all([fastA.close(), fastB.close(), slow.close()]));
  const fx = await start(t, pki, { endpoints: [fastA.port, fastB.port, slow.port], retries: { attempts: 2, budgetMinPerSecond: 1000 } });
  // four requests, one after another: fewer than outlier detection's 5 failures in a row on
  // any endpoint, so none is ejected
  for (let i = 1; i <= 4; i++) {
    t.equal((await request(fx.port)).status, 503, `request ${i}: the last 503 reaches the app`);
    t.same([fastA.requests, fastB.requests, slow.requests], [i, i, i], `request ${i}: each endpoint tried once`);
  }
});

t.test('h2c: retried on 503, and a keyed POST replays its body', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki, { handler: flaky(2, 503) });
  t.teardown(() => up.close());
  const fx = await start(t, pki, { endpoints: [up.port] });
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const get = await h2(session, { ':method': 'GET', ':path': '/echo' });
  t.equal(get.status, 200);
  t.equal(up.requests, 3);
  const plain = await h2(session, { ':method': 'POST', ':path': '/echo' }, 'once');
  t.equal(plain.status, 200, 'a POST is not retried, but the upstream is healthy again');
  const upFlaky = await startUpstream(pki, { handler: flaky(1, 503) });
  t.teardown(() => upFlaky.close());
  const fx2 = await start(t, pki, { endpoints: [upFlaky.port] });
  const s2 = http2.connect(`http://127.0.0.1:${fx2.port}`);
  t.teardown(() => s2.close());
  const noKey = await h2(s2, { ':method': 'POST', ':path': '/echo' }, 'hello');
  t.equal(noKey.status, 503);
  t.equal(upFlaky.requests, 1);
  const keyed = await h2(s2, { ':method': 'POST', ':path': '/echo', 'idempotency-key': 'abc' }, 'hello');
  t.equal(keyed.status, 200);
  t.equal(JSON.parse(keyed.body).body, 'hello');
});

t.test('helpers: Retry-After, backoff, budget, app deadlines', async (t) => {
  t.equal(retryAfterMs('3'), 3000);
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  t.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', now), 5000, 'an HTTP date: the time until then');
  t.equal(retryAfterMs(['Wed, 21 Oct 2015 07:30:00 GMT'], now), 120_000, 'the first of repeated headers');
  t.equal(retryAfterMs('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past: no wait');
  t.equal(retryAfterMs(' 7 ', now), 7000, 'delay-seconds, whitespace trimmed');
  t.equal(retryAfterMs('soon'), undefined);
  t.equal(retryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT', Date.parse('Sun, 06 Nov 1994 08:49:30 GMT')), 7000, 'the RFC 850 form');
  t.equal(retryAfterMs('Sun Nov  6 08:49:37 1994', Date.parse('Sun, 06 Nov 1994 08:49:30 GMT')), 7000, 'the asctime form, in GMT');
  // none of the RFC's forms: no Retry-After (the backoff applies); Date.parse read each as a past
  // date (no wait at all) or, for the last two, as one decades away
  for (const hostile of ['-5', '1.5', '+5', '5, 10', '0x10', '2099-01-01', '12/31/2099']) t.equal(retryAfterMs(hostile, now), undefined, `'${hostile}' is not a Retry-After`);
  for (let i = 0; i < 50; i++) {
    const b = backoffMs(3, 25, 1000);
    t.ok(b >= 0 && b <= 100);
  }
  t.ok(backoffMs(20, 25, 1000) <= 1000, 'capped');
  const budget = new RetryBudget(0.2, 10, 0);
  let granted = 0;
  for (let i = 0; i < 100; i++) {
    budget.requests += 1;
    if (budget.tryWithdraw(0)) granted += 1;
  }
  t.equal(granted, 30, '10 in reserve plus 20% of 100 requests');
  t.ok(budget.tryWithdraw(1000), 'the reserve refills over time');
  // the README's figure: a long healthy spell banks at most ratio × 100, so a sudden outage gets 30 at once
  const banked = new RetryBudget(0.2, 10, 0);
  banked.requests = 1000;
  let burst = 0;
  for (let i = 0; i < 100; i++) if (banked.tryWithdraw(0)) burst += 1;
  t.equal(burst, 30, 'after 1,000 healthy requests, a burst of failures gets 20 banked plus the reserve of 10');
  // a clock that steps back (the budget's own clock is monotonic; a given one may not be)
  const stepped = new RetryBudget(0, 1, 100_000);
  t.ok(stepped.tryWithdraw(100_000), 'the reserve of 1/s');
  t.notOk(stepped.tryWithdraw(40_000), 'a minute back: nothing refilled');
  t.ok(stepped.tryWithdraw(41_000), 'a second later the reserve has refilled, not a minute later');
  t.equal(appDeadlineMs('100m', undefined), 100);
  t.equal(appDeadlineMs('2S', undefined), 2000);
  t.equal(appDeadlineMs('1H', undefined), 3_600_000);
  t.equal(appDeadlineMs('5000u', undefined), 5);
  t.equal(appDeadlineMs('1n', undefined), 1);
  t.equal(appDeadlineMs(undefined, '250ms'), 250);
  t.equal(appDeadlineMs(undefined, '1.5'), 1500);
  t.equal(appDeadlineMs('1S', '250ms'), 250, 'the shorter wins');
  t.equal(appDeadlineMs('x', 'y'), undefined);
});

// Inbound rate limiting per caller identity and for all callers together, over real mutual
// TLS: 429 rate_limited with the JSON body, x-meshcar-error and a correct Retry-After, other
// identities unaffected, reported to the observer; plus the config keys and the buckets.

import t from 'tap';
import { parseYamlSource } from '../../src/config/yaml-source.js';
import { DEFAULT_INBOUND_LIMITS, readInbound } from '../../src/config/inbound-config.js';
import { KeyedTokenBuckets, TokenBucket } from '../../src/http/token-bucket.js';
import { FRONTEND_ID, h1Request, h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';

const BILLING_ID = `spiffe://${TD}/svc/billing`;
const GET = { ':method': 'GET', ':path': '/orders' };

t.test('config: inbound.rateLimit and inbound.limits', async (t) => {
  const parse = (text: string) => {
    const source = parseYamlSource('c.yaml', `listen: 127.0.0.1:0\napp: http://127.0.0.1:8080\n${text}`);
    const config = readInbound(source.root!, TD);
    return { config, issues: source.issues.map((i) => `${i.path}: ${i.message}`) };
  };
  const plain = parse('');
  t.equal(plain.config?.rateLimit, undefined, 'no rateLimit: no limit');
  t.equal(plain.config?.limits, undefined, 'no limits: the listener applies the defaults');
  t.same(parse('limits: {maxResetsPer10s: 50}').config?.limits, { ...DEFAULT_INBOUND_LIMITS, maxResetsPer10s: 50 }, 'unset limits default');

  const full = parse('rateLimit:\n  perIdentity: {rate: 100/s, burst: 200}\n  total: {rate: 600/m}\nlimits:\n  maxConcurrentStreams: 100\n  maxHeaderListSize: 32KiB\n  maxResetsPer10s: 50\n');
  t.same(full.issues, []);
  t.same(full.config?.rateLimit, { perIdentity: { perSecond: 100, burst: 200 }, total: { perSecond: 10, burst: 10 } }, 'burst defaults to one second of rate');
  t.same(full.config?.limits, { ...DEFAULT_INBOUND_LIMITS, maxConcurrentStreams: 100, maxHeaderListSize: 32768, maxResetsPer10s: 50 });

  const bad = parse('rateLimit:\n  perIdentity: {rate: 100, burst: 0}\n  everyone: {rate: 1/s}\nlimits:\n  maxHeaderListSize: 10\n');
  t.equal(bad.config, undefined);
  t.match(bad.issues.join('\n'), /rateLimit\.perIdentity\.rate: .*not a rate/);
  t.match(bad.issues.join('\n'), /rateLimit\.perIdentity\.burst: .*at least 1/);
  t.match(bad.issues.join('\n'), /everyone/);
  t.match(bad.issues.join('\n'), /maxHeaderListSize: .*between 1KiB and 1MiB/);
  t.match(parse('rateLimit:\n  total: {burst: 5}\n').issues.join('\n'), /rate/, 'rate is required');
});

t.test('token buckets: held buckets, eviction, clock steps', async (t) => {
  const buckets = new KeyedTokenBuckets({ perSecond: 1, burst: 2 }, 4);
  const a = buckets.bucket('a', 0);
  t.equal(buckets.bucket('a', 0), a, 'one bucket per key');
  a.take(0);
  a.take(0);
  t.equal(a.take(0).allowed, false);
  t.equal(a.take(-5_000).allowed, false, 'a clock stepping back adds no tokens');
  t.equal(a.take(-4_000).allowed, true, 'and refills at the rate from there, not once it has caught up');
  t.equal(a.take(1_000).allowed, true, 'refills at the rate');
  // new keys after the refill time sweep idle ones; the holder sees it was evicted
  buckets.bucket('b', 10_000);
  t.ok(a.evicted, 'swept bucket is marked');
  t.not(buckets.bucket('a', 10_000), a, 'a new lookup gets a live bucket');
  // more busy keys than the cap: memory stays bounded
  for (let i = 0; i < 20; i++) buckets.bucket(`k${i}`, 10_000);
  t.ok(buckets.size <= 4, `bounded (${buckets.size})`);
  const single = new TokenBucket({ perSecond: 0.2, burst: 1 }, 0);
  t.equal(single.take(0).allowed, true);
  const refused = single.take(0);
  t.same(refused, { allowed: false, retryAfterSeconds: 5 }, 'retry hint: time until one whole token');
});

// Past the cap with no bucket idle long enough to be full again, a tenth is dropped: the oldest
// went first, so a caller held back (its bucket empty) came back with its whole burst once
// enough other callers had come; now the fullest go first, who lose nothing by starting over.
t.test('token buckets past the cap: a caller held back stays held back', async (t) => {
  const buckets = new KeyedTokenBuckets({ perSecond: 1 / 60, burst: 5 }, 10);
  const greedy = buckets.bucket('greedy', 0);
  for (let i = 0; i < 5; i++) t.equal(greedy.take(0).allowed, true, 'its burst');
  t.equal(greedy.take(0).allowed, false, 'then held back');
  // 30 other callers, one request each, within a second: sweeps at the cap
  for (let i = 0; i < 30; i++) buckets.take(`caller-${i}`, 1_000 + i);
  t.ok(buckets.size <= 10, `bounded (${buckets.size})`);
  t.notOk(greedy.evicted, 'its empty bucket was kept');
  t.equal(buckets.take('greedy', 2_000).allowed, false, 'still held back');
});

t.test('per identity: burst, then 429 with Retry-After; other identities unaffected', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  // 1 token per 5 s, burst 3: the fourth request waits 5 s for its token
  fx.inbound.setRateLimit({ perIdentity: { perSecond: 0.2, burst: 3 }, total: undefined });
  const frontend = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => frontend.destroy());

  for (let i = 0; i < 3; i++) t.equal((await h2Request(frontend, GET)).status, 200, `burst request ${i + 1}`);
  const refused = await h2Request(frontend, GET);
  t.equal(refused.status, 429);
  t.equal(refused.headers['x-meshcar-error'], 'rate_limited');
  t.equal(refused.headers['retry-after'], '5', 'Retry-After: seconds until a token, rounded up');
  t.equal(refused.headers['content-type'], 'application/json');
  const body = JSON.parse(refused.body.toString('utf8')) as { error: string; message: string; requestId: string };
  t.equal(body.error, 'rate_limited');
  t.match(body.message, FRONTEND_ID);
  t.ok(body.requestId);

  // the same identity on another connection (and HTTP/1.1) shares the bucket
  const h1 = await h1Request(fx.port, await fx.tlsOptions(FRONTEND_ID), { path: '/orders' });
  t.equal(h1.status, 429, 'HTTP/1.1, new connection, same identity');
  t.equal(h1.headers['retry-after'], '5');
  t.equal(h1.headers['x-meshcar-error'], 'rate_limited');

  // another identity has its own bucket
  const billing = await h2Connect(fx.port, await fx.tlsOptions(BILLING_ID));
  t.teardown(() => billing.destroy());
  for (let i = 0; i < 3; i++) t.equal((await h2Request(billing, GET)).status, 200, `other identity ${i + 1}`);

  const records = await fx.observer.waitForRequests(9);
  const limited = records.filter((r) => r.errorCode === 'rate_limited');
  t.equal(limited.length, 2, 'each refusal reported with errorCode rate_limited');
  t.ok(limited.every((r) => r.status === 429 && r.peer === 'frontend' && r.direction === 'inbound'));
  t.equal(records.filter((r) => r.peer === 'billing' && r.status === 200).length, 3);
});

t.test('per identity: tokens come back at the rate', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  // 4/s: a token every 250 ms, so the three requests sent together meet two tokens even on a
  // loaded box (at 20/s a 50 ms stall between them refilled one and the third passed)
  fx.inbound.setRateLimit({ perIdentity: { perSecond: 4, burst: 2 }, total: undefined });
  const session = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  t.teardown(() => session.destroy());
  const statuses = (await Promise.all([1, 2, 3].map(() => h2Request(session, GET)))).map((r) => r.status).sort();
  t.same(statuses, [200, 200, 429]);
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await h2Request(session, GET)).status, 200, 'a token came back after 1/rate');
  fx.inbound.setRateLimit(undefined);
  const after = await Promise.all([1, 2, 3, 4, 5].map(() => h2Request(session, GET)));
  t.ok(after.every((r) => r.status === 200), 'limits removed live');
});

t.test('total limit across identities; a refusal spends no identity token', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  fx.inbound.setRateLimit({ perIdentity: undefined, total: { perSecond: 0.25, burst: 4 } });
  const frontend = await h2Connect(fx.port, await fx.tlsOptions(FRONTEND_ID));
  const billing = await h2Connect(fx.port, await fx.tlsOptions(BILLING_ID));
  t.teardown(() => {
    frontend.destroy();
    billing.destroy();
  });
  t.equal((await h2Request(frontend, GET)).status, 200);
  t.equal((await h2Request(billing, GET)).status, 200);
  t.equal((await h2Request(frontend, GET)).status, 200);
  t.equal((await h2Request(billing, GET)).status, 200);
  for (const session of [frontend, billing]) {
    const res = await h2Request(session, GET);
    t.equal(res.status, 429, 'the shared budget is spent for everyone');
    t.equal(res.headers['retry-after'], '4');
    t.match(JSON.parse(res.body.toString('utf8')), { error: 'rate_limited', message: /total rate limit/ });
  }

  // both limits: the total refuses while the caller still has tokens, which it keeps
  fx.inbound.setRateLimit({ perIdentity: { perSecond: 0.01, burst: 3 }, total: { perSecond: 4, burst: 2 } });
  const first = (await Promise.all([1, 2, 3].map(() => h2Request(frontend, GET)))).map((r) => r.status).sort();
  t.same(first, [200, 200, 429], 'total (burst 2) refuses the third');
  // the total refills to its burst (2 tokens in 500 ms), so the next two requests meet it with tokens to spare
  await new Promise((r) => setTimeout(r, 550));
  t.equal((await h2Request(frontend, GET)).status, 200, 'the identity still had its third token');
  const own = await h2Request(frontend, GET);
  t.equal(own.status, 429, 'now the identity limit refuses');
  t.equal(own.headers['retry-after'], '100', '1 token at 0.01/s');
  t.match(JSON.parse(own.body.toString('utf8')), { message: /rate limit/ });
});

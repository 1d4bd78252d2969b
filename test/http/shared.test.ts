// What both directions share: hop-by-hop header removal, request ids, rate limit buckets and
// the error answers' shape.

import t from 'tap';
import { forwardableHeaders } from '../../src/http/hop-by-hop.js';
import { randomRequestId, requestIdOf } from '../../src/http/request-id.js';
import { KeyedTokenBuckets } from '../../src/http/token-bucket.js';
import { errorBody, rawErrorResponse, statusFor } from '../../src/http/status.js';
import { MeshcarError } from '../../src/errors.js';

t.test('hop-by-hop headers and the ones Connection names are dropped; te: trailers survives', async (t) => {
  const out = forwardableHeaders({ connection: 'keep-alive, X-Secret', 'keep-alive': 'timeout=5', 'x-secret': '1', 'transfer-encoding': 'chunked', upgrade: 'h2c', te: 'trailers, deflate', 'proxy-authorization': 'Basic x', host: 'orders', 'x-keep': 'yes' });
  t.same(out, { host: 'orders', 'x-keep': 'yes', te: 'trailers' });
  t.same(forwardableHeaders({ te: 'gzip' }), {}, 'any other te is dropped');
});

t.test('x-request-id kept when sane, made otherwise', async (t) => {
  t.equal(requestIdOf({ 'x-request-id': 'abc-123' }), 'abc-123');
  t.match(requestIdOf({}), /^[0-9a-f-]{36}$/);
  t.not(requestIdOf({ 'x-request-id': 'bad id\nwith newline' }), 'bad id\nwith newline');
  t.match(requestIdOf({ 'x-request-id': 'x'.repeat(500) }), /^[0-9a-f-]{36}$/, 'overlong ids are replaced');
});

t.test('made request ids are random version 4 UUIDs, never repeated across refills of the random pool', async (t) => {
  const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const seen = new Set<string>();
  // 2,000 ids: the pool of random bytes (256 ids) is refilled seven times
  const digits = Array.from({ length: 36 }, () => new Set<string>());
  let malformed = 0;
  for (let i = 0; i < 2000; i++) {
    const id = randomRequestId();
    if (!V4.test(id)) malformed++;
    seen.add(id);
    for (let at = 0; at < 36; at++) digits[at]!.add(id[at]!);
  }
  t.equal(malformed, 0, 'every id has the version and variant bits');
  t.equal(seen.size, 2000, 'no id repeats');
  // every random digit takes many values (a digit fed from a fixed or reused byte would not)
  const fixed = [8, 13, 14, 18, 19, 23]; // dashes, the version digit, the variant digit
  const narrow = digits.flatMap((values, at) => (!fixed.includes(at) && values.size < 16 ? [`${at}: ${values.size}`] : []));
  t.same(narrow, [], 'all 16 hex digits appear at each random position');
  t.same([...digits[19]!].sort(), ['8', '9', 'a', 'b'], 'the variant digit spans its four values');
});

t.test('token buckets: burst, then refusals with a retry hint, per key', async (t) => {
  const buckets = new KeyedTokenBuckets({ perSecond: 2, burst: 3 });
  const now = 1_000_000;
  t.same([1, 2, 3].map(() => buckets.take('a', now).allowed), [true, true, true]);
  const refused = buckets.take('a', now);
  t.equal(refused.allowed, false);
  t.equal(!refused.allowed && refused.retryAfterSeconds, 0.5, 'one token comes back in 0.5 s');
  t.equal(buckets.take('b', now).allowed, true, 'another key has its own bucket');
  t.equal(buckets.take('a', now + 500).allowed, true, 'refilled after the hint');
});

t.test('error answers: statuses and bodies', async (t) => {
  t.equal(statusFor('no_route'), 404);
  t.equal(statusFor('upstream_timeout'), 504);
  t.equal(statusFor('rate_limited'), 429);
  const err = new MeshcarError('forbidden', 'nope');
  t.same(JSON.parse(errorBody(err, 'r1')), { error: 'forbidden', message: 'nope', requestId: 'r1' });
  const raw = rawErrorResponse(new MeshcarError('rate_limited', 'slow down', { retryAfterSeconds: 1.2 }), 'r2');
  t.match(raw, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
  t.match(raw, /x-meshcar-error: rate_limited\r\n/);
  t.match(raw, /retry-after: 2\r\n/);
  t.match(raw, /connection: close\r\n\r\n\{"error":"rate_limited"/);
});

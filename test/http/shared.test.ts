// What both directions share: hop-by-hop header removal, request ids, rate limit buckets and
// the error answers' shape.

import t from 'tap';
import { forwardableHeaders } from '../../src/http/hop-by-hop.js';
import { requestIdOf } from '../../src/http/request-id.js';
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

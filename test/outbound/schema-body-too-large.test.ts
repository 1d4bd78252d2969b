// The outbound's OpenAPI check in enforce mode answers a JSON body over maxBodySize with 413
// body_too_large, and counts it as the `body` violation it is (README, API schema validation:
// "Either way a violation is counted"), as the inbound does and as the outbound's shadow mode
// does. It was answered but not recorded as a violation: no meshcar_schema_violations_total,
// no `schema` in the access log, /endpoints' `violations` left as it was. Both ways a body can
// be too large: announced by Content-Length (refused before a byte is read), or found so while
// it is read (an h2c stream without content-length).

import t from 'tap';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h2cRequest, makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';

const SPEC = resolve('config/orders.openapi.yaml');
const JSON_HEAD = { 'content-type': 'application/json', 'idempotency-key': 'idem-0001' };
const MAX_BODY = 512;
// a valid order, but 840 bytes
const BIG = JSON.stringify({ item: 'book', qty: 1, note: 'x'.repeat(800) });

t.test('outbound enforce: a body over maxBodySize is 413 and counted as a body violation', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(() => fx.close());
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: MAX_BODY, maxBuffered: 4096 })]]));

  const announced = await request(fx.port, { method: 'POST', path: '/orders', headers: { ...JSON_HEAD, host: 'payments' }, body: BIG });
  t.same([announced.status, announced.headers['x-meshcar-error']], [413, 'body_too_large'], 'HTTP/1.1 with Content-Length: 413');
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const read = await h2cRequest(session, { ':method': 'POST', ':path': '/orders', ':authority': 'payments', ...JSON_HEAD }, BIG);
  t.same([read.status, read.headers['x-meshcar-error']], [413, 'body_too_large'], 'h2c without content-length: 413 once it outgrows the limit');

  const records = await fx.observer.waitForRequests(2);
  const message = `body: is larger than the ${MAX_BODY}-byte limit (openapi.maxBodySize)`;
  for (const record of records.slice(0, 2)) {
    t.match(record, { direction: 'outbound', peer: 'payments', status: 413, errorCode: 'body_too_large', schema: { route: '/orders', violation: { kind: 'body', message } } }, 'recorded as a body violation');
  }
  t.equal(upstream.requests, 0, 'nothing went upstream');
});

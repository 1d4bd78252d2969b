// JSON numbers a double does not hold as sent: `100.000000000000000000001` parsed as 100 passed
// `maximum: 100`, while an app reading decimals (BigDecimal, Decimal, json.Number) reads it
// above 100. Such a body is checked with each of those numbers read as the double below it
// and the one above: refused when a rule holds for one and not the other; ids beyond 2^53
// that no rule bounds still pass. Through a real inbound over mTLS, in enforce mode.

import t from 'tap';
import { inexactNumbers, withNeighbours } from '../../src/schema/number-precision.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

t.test('the numbers no double holds, and the doubles around them', async (t) => {
  t.same(inexactNumbers('{"a":100.000000000000000000001}').map((n) => [n.text, n.below, n.above]), [['100.000000000000000000001', 100, 100.00000000000001]]);
  t.same(inexactNumbers('{"a":-100.000000000000000000001}').map((n) => [n.below, n.above]), [[-100.00000000000001, -100]]);
  t.same(inexactNumbers('[9007199254740993]').map((n) => [n.below, n.above]), [[9007199254740992, 9007199254740994]]);
  t.same(inexactNumbers('[99.999999999999999999999]').map((n) => [n.below, n.above]), [[99.99999999999999, 100]]);
  t.same(inexactNumbers('[1e-400]').map((n) => [n.below, n.above]), [[0, 5e-324]], 'underflow: between 0 and the least double');
  // what a double prints as is held, however long the text
  for (const exact of ['[9007199254740992]', '[0.30000000000000004]', '[1.0000000000000000]', '[0.1, 1e300, -0, 0e-999]', '{"id":"12345678901234567890123"}', '[123456789012345.6]']) {
    t.same(inexactNumbers(exact), [], `${exact}: held`);
  }
  const text = '{"a":[1e-400, 2, 100.000000000000000000001]}';
  t.equal(withNeighbours(text, inexactNumbers(text), 'below'), '{"a":[0, 2, 100]}');
  t.equal(withNeighbours(text, inexactNumbers(text), 'above'), '{"a":[5e-324, 2, 100.00000000000001]}');
});

t.test('a number of 100,000 digits is read in linear time', async (t) => {
  // 1, 99,998 zeros, 1: trailing zeros were cut by /0+$/, which retried from every zero of the
  // run (6 s here; a 1 MB body, the default maxBodySize, held the event loop for 90 s)
  const digits = `1${'0'.repeat(99_998)}1`;
  const started = performance.now();
  const found = inexactNumbers(`{"price":${digits.slice(0, 3)}.${digits.slice(3)}}`);
  const ms = performance.now() - started;
  t.equal(found.length, 1, 'read as a number no double holds');
  t.ok(ms < 1_000, `read in ${ms.toFixed(1)} ms`);
});

t.test('a rule that holds for the double but may not for the number as sent refuses the body', async (t) => {
  const { f, tls } = await startSpecInbound(
    t,
    `openapi: 3.0.3
info: {title: orders, version: 1.0.0}
paths:
  /orders:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                price: {type: number, maximum: 100}
                qty: {type: integer, minimum: 1}
                level: {enum: [1, 2]}
                id: {type: integer}
      responses:
        "200": {description: ok}
`,
    { maxBodySize: 1 << 20 },
  );
  const post = (body: string) => h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body });
  const refused: Array<[string, string]> = [
    ['{"price":100.000000000000000000001}', 'body/price: must be <= 100 (with 100.000000000000000000001 read as the double above it, as no double holds it as sent)'],
    ['{"qty":1.0000000000000000001}', 'body/qty: must be integer (with 1.0000000000000000001 read as the double above it, as no double holds it as sent)'],
    ['{"qty":0.99999999999999999999}', 'body/qty: must be integer (with 0.99999999999999999999 read as the double below it, as no double holds it as sent)'],
    ['{"level":2.00000000000000000001,"price":1e-400}', 'body/level: must be one of 1, 2 (with 2.00000000000000000001 and the other numbers read as the double above it, as no double holds it as sent)'],
  ];
  for (const [body, message] of refused) {
    const res = await post(body);
    t.equal(res.status, 400, `${body}: refused`);
    t.match(JSON.parse(res.body), { error: 'schema_violation', message }, `${body}: says which rule and why`);
  }
  for (const body of ['{"id":9007199254740993}', '{"price":99.999999999999999999999}', '{"price":0.30000000000000004,"qty":5}', '{"price":1e-400,"level":1}', '{"qty":2,"note":"100.000000000000000000001"}']) {
    t.equal((await post(body)).status, 200, `${body}: passes`);
  }
});

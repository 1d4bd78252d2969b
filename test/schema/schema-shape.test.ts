// A parameter's shape read through allOf, anyOf, oneOf (src/schema/schema-shape.ts): Ajv coerces
// a parameter's text to the types it meets in those subschemas, so the rules that read the
// shape must see them too. A number under `allOf: [{$ref: Page}]` took `?a=0b1` as 1 (it was no
// number to the decimal-text rule), and an array under allOf refused `?t=a&t=b` as a scalar
// given twice. Over a real inbound in enforce mode.

import t from 'tap';
import { startSpecInbound } from '../helpers/spec-inbound.js';
import { numericKindOf } from '../../src/schema/number-syntax.js';

const SPEC = `openapi: 3.0.3
info: {title: shapes, version: '1'}
paths:
  /p:
    get:
      parameters:
        - {name: a, in: query, schema: {allOf: [{$ref: '#/components/schemas/Page'}], description: page size}}
        - {name: o, in: query, schema: {oneOf: [{$ref: '#/components/schemas/Page'}]}}
        - {name: n, in: query, schema: {anyOf: [{allOf: [{type: number, maximum: 10}]}]}}
        - {name: h, in: header, schema: {allOf: [{$ref: '#/components/schemas/Page'}]}}
        - {name: t, in: query, schema: {allOf: [{type: array, items: {type: string, maxLength: 3}}]}}
        - {name: ids, in: query, schema: {allOf: [{type: array, items: {allOf: [{type: integer}]}}]}}
      responses: {'200': {description: ok}}
components:
  schemas:
    Page: {type: integer, minimum: 1, maximum: 100}
`;

t.test('the shape is read through the subschemas applied to the value', async (t) => {
  t.equal(numericKindOf({ allOf: [{ type: 'integer' }] }), 'integer');
  t.equal(numericKindOf({ if: { minimum: 0 }, then: { type: 'number' } }), 'number');
  t.equal(numericKindOf({ not: { type: 'integer' } }), undefined, 'not: the value is no integer');
  t.equal(numericKindOf({ if: { type: 'integer' }, then: { minimum: 1 } }), undefined, 'if tests the value, it does not hold it');
  t.equal(numericKindOf({ allOf: [{ type: 'array' }], items: { oneOf: [{ type: 'integer' }] } }), 'integer');
  t.equal(numericKindOf({ allOf: [{ type: 'integer' }], anyOf: [{ type: 'string' }] }), undefined, 'a string among its types: any text may be meant');
  const loop: Record<string, unknown> = { type: 'integer' };
  loop.allOf = [loop];
  t.equal(numericKindOf(loop), 'integer', 'a schema that holds itself is read once');
});

t.test('numbers and arrays under allOf, oneOf, anyOf are checked as such', async (t) => {
  const { call } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'shapes.yaml' });
  const get = (path: string, headers: Record<string, string> = {}) => call('GET', path, headers);
  for (const path of ['/p?a=5', '/p?o=7', '/p?n=2.5', '/p?t=a&t=b', '/p?t=abc', '/p?ids=1&ids=2']) t.equal((await get(path)).status, 200, `${path} passes`);
  t.equal((await get('/p', { h: '3' })).status, 200, 'h: 3 passes');
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    ['/p?a=0b1', {}, /^query\/a: 0b1 is not written as a decimal integer/],
    ['/p?a=0x1', {}, /^query\/a: 0x1 is not written as a decimal integer/],
    ['/p?a=1e1', {}, /^query\/a: 1e1 is not written as a decimal integer/],
    ['/p?o=0x5', {}, /^query\/o: 0x5 is not written as a decimal integer/],
    ['/p?n=0x5', {}, /^query\/n: 0x5 is not written as a decimal number/],
    ['/p?ids=1&ids=0b1', {}, /^query\/ids: 0b1 is not written as a decimal integer/],
    ['/p', { h: '0b1' }, /^header\/h: 0b1 is not written as a decimal integer/],
    ['/p?a=0', {}, /^query\/a: must be >= 1$/],
    ['/p?t=a&t=abcd', {}, /^query\/t\/1: must NOT have more than 3 characters$/],
  ];
  for (const [path, headers, message] of refused) {
    const res = await get(path, headers);
    t.equal(res.status, 400, `${path} ${JSON.stringify(headers)} is refused`);
    t.match(res.message, message);
  }
});

// Numeric parameters (path, query, header) must be written as decimal numbers. The validator
// coerces their text with JavaScript's Number(), which also reads 0b11, 0x10, 0o7 and 1e1 as
// integers and Infinity or 1e999 as a number: `?limit=0b11` passed `minimum: 1` as 3 and an app
// reading it with parseInt got 0; `?price=Infinity` passed `type: number`. Over a real inbound
// in enforce mode (src/schema/number-syntax.ts); text that is no number at all keeps the
// validator's own words, and decimal numbers pass as before.

import t from 'tap';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: items, version: '1'}
paths:
  /items:
    get:
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: price, in: query, schema: {type: number, minimum: 0}}
        - {name: ids, in: query, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: X-Count, in: header, schema: {type: integer, minimum: 1}}
        - {name: note, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
  /items/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
      responses: {'200': {description: ok}}
`;

t.test('numbers the app would read otherwise are refused; decimal ones pass', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'items.yaml' });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await h1Request(f.port, tls, { method: 'GET', path, headers });
    return { status: res.status, message: res.status === 200 ? '' : String(JSON.parse(res.body).message) };
  };

  for (const path of ['/items?limit=5', '/items?limit=007', '/items?price=2.5', '/items?price=-0', '/items?price=1.5e2', '/items?ids=1,2,3', '/items/42', '/items?note=0x10', '/items?limit=%2B5', '/items?price=%2B2.5e1']) {
    t.equal((await get(path)).status, 200, `${path} passes`);
  }
  t.equal((await get('/items', { 'x-count': '3' })).status, 200, 'X-Count: 3 passes');
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    ['/items?limit=0b11', {}, /^query\/limit: 0b11 is not written as a decimal integer/],
    ['/items?limit=0x10', {}, /^query\/limit: 0x10 is not written as a decimal integer/],
    ['/items?limit=0o7', {}, /^query\/limit: 0o7 is not/],
    ['/items?limit=1e1', {}, /^query\/limit: 1e1 is not/],
    ['/items?price=Infinity', {}, /^query\/price: Infinity is not written as a decimal number/],
    ['/items?price=1e999', {}, /^query\/price: 1e999 is not/],
    [`/items?price=${'9'.repeat(400)}`, {}, /^query\/price: 9{200}… \(400 characters\) is not/],
    ['/items?ids=1,0x2', {}, /^query\/ids: 0x2 is not/],
    ['/items/0x1', {}, /^path\/id: 0x1 is not/],
    ['/items?limit=+5', {}, /^query\/limit: {2}5 is not/],
    ['/items', { 'x-count': '0b1' }, /^header\/x-count: 0b1 is not/],
  ];
  for (const [path, headers, message] of refused) {
    const res = await get(path, headers);
    t.equal(res.status, 400, `${path} ${JSON.stringify(headers)} is refused`);
    t.match(res.message, message);
  }
  t.equal((await get('/items?limit=abc')).message, 'query/limit: must be integer', 'no number at all: the validator says so');
});

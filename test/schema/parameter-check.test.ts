// A numeric parameter that no double holds as sent (`?n=100.00000000000000000001`, read as 100
// by the validator's Number()) is held to its rules as a body's number is: read as the double
// below it and the one above, refused if a rule misses one (src/schema/parameter-check.ts).
// `maximum: 100` passed it in the query while a body with the same number was refused. Query,
// header and path, over a real inbound in enforce mode.

import t from 'tap';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: items, version: '1'}
paths:
  /items/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, maximum: 9007199254740992}}
        - {name: n, in: query, schema: {type: number, maximum: 100}}
        - {name: ns, in: query, explode: false, schema: {type: array, items: {type: number, minimum: 1}}}
        - {name: X-Limit, in: header, schema: {type: number, maximum: 5}}
      responses: {'200': {description: ok}}
`;

t.test('parameters beyond double precision are held to their rules as sent', async (t) => {
  const { call } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'items.yaml' });
  const get = (path: string, headers: Record<string, string> = {}) => call('GET', path, headers);
  const passing = ['/items/1?n=99.999999999999999999999', '/items/1?n=100', '/items/1?n=%2B099.9999999999999999999', '/items/9007199254740991', '/items/1?ns=1,2.00000000000000000001'];
  for (const path of passing) t.equal((await get(path)).status, 200, `${path} passes`);
  t.equal((await get('/items/1', { 'x-limit': '4.9999999999999' })).status, 200, 'X-Limit: 4.9999999999999 passes');
  const refused: Array<[string, Record<string, string>, string]> = [
    ['/items/1?n=100.00000000000000000001', {}, 'query/n: must be <= 100 (with 100.00000000000000000001 read as the double above it, as no double holds it as sent)'],
    ['/items/1?n=%2B0100.00000000000000000001', {}, 'query/n: must be <= 100 (with +0100.00000000000000000001'],
    ['/items/1?ns=1,0.99999999999999999999', {}, 'query/ns/1: must be >= 1 (with 0.99999999999999999999 read as the double below it'],
    ['/items/9007199254740993', {}, 'path/id: must be <= 9007199254740992 (with 9007199254740993 read as the double above it'],
    ['/items/1', { 'x-limit': '5.00000000000000000001' }, 'header/x-limit: must be <= 5 (with 5.00000000000000000001 read as the double above it'],
  ];
  for (const [path, headers, message] of refused) {
    const res = await get(path, headers);
    t.equal(res.status, 400, `${path} is refused`);
    t.match(res.message, message);
  }
});

// Object parameters are left alone, as the styles the check does not interpret are. Form
// spreads an exploded object over keys of its own (`?color=blue&size=M` for `filter`), and
// otherwise an object is written as `key,value` pairs: checked as one string, every valid call
// was refused in enforce mode (`query/filter: is required`, `header/x-tags: must be object`).
// The other parameters of the operation are still checked. Over a real inbound, enforce.

import t from 'tap';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.1.0
info: {title: items, version: '1'}
paths:
  /items:
    get:
      parameters:
        - {name: filter, in: query, required: true, schema: {type: object, properties: {color: {type: string}, size: {type: string}}}}
        - {name: view, in: query, explode: false, schema: {type: [object, 'null'], properties: {mode: {type: string}}}}
        - {name: X-Tags, in: header, schema: {type: object, properties: {a: {type: integer}}}}
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
      responses: {'200': {description: ok}}
`;

t.test('objects in the query and the headers are not misread; the rest is checked', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'items.yaml' });
  const get = (path: string, headers: Record<string, string> = {}) => h1Request(f.port, tls, { method: 'GET', path, headers });
  t.equal((await get('/items?color=blue&size=M')).status, 200, 'form, exploded: the object spread over its keys');
  t.equal((await get('/items?color=blue&view=mode,list')).status, 200, 'form, not exploded: key,value pairs');
  t.equal((await get('/items?color=blue', { 'x-tags': 'a,1' })).status, 200, 'simple, in a header');
  const over = await get('/items?color=blue&limit=1000');
  t.equal(over.status, 400, 'another parameter is still checked');
  t.equal(JSON.parse(over.body).message, 'query/limit: must be <= 100');
});

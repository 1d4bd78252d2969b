// A body schema under text/json is a JSON body's schema. ASP.NET Core's JSON input formatter
// reads text/json, and Swashbuckle (its usual spec generator) writes each request body's
// schema under application/json, text/json and application/*+json: with such a spec a caller
// sending Content-Type: text/json had an invalid body reach the app unchecked, as a non-JSON
// type. A +json type is held to the application/*+json entry (it was 415, matching none).
// Rails' JSON aliases (text/x-json, application/jsonrequest) and application/x-json are JSON too.
// Over a real inbound in enforce mode (src/schema/operation.ts isJsonType, spec.ts mediaFor).

import t from 'tap';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

// as Swashbuckle writes a request body
const SPEC = `openapi: 3.0.1
info: {title: orders, version: '1'}
paths:
  /api/orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Order'}
          text/json:
            schema: {$ref: '#/components/schemas/Order'}
          application/*+json:
            schema: {$ref: '#/components/schemas/Order'}
      responses: {'200': {description: Success}}
components:
  schemas:
    Order:
      type: object
      additionalProperties: false
      required: [qty]
      properties: {qty: {type: integer, format: int32, minimum: 1}}
`;

t.test('text/json bodies are validated like application/json ones, +json ones under application/*+json', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'swashbuckle.yaml' });
  const post = (type: string, body: string) => h1Request(f.port, tls, { method: 'POST', path: '/api/orders', headers: { 'content-type': type }, body });
  for (const type of ['application/json', 'text/json', 'Text/JSON; charset=utf-8']) {
    t.equal((await post(type, '{"qty":2}')).status, 200, `${type}: a valid order passes`);
    const invalid = await post(type, '{"qty":0}');
    t.equal(invalid.status, 400, `${type}: an invalid one is refused`);
    t.equal(JSON.parse(invalid.body).message, 'body/qty: must be >= 1');
  }
  t.equal((await post('text/json', '{"qty":')).status, 400, 'text/json that is not JSON is refused');
  // the application/*+json range: a +json type is checked by its schema (it was 415)
  t.equal((await post('application/merge-patch+json', '{"qty":2}')).status, 200, 'a +json type under application/*+json passes');
  const patch = await post('application/vnd.orders+json', '{"qty":0}');
  t.equal(patch.status, 400, 'and is validated');
  t.equal(JSON.parse(patch.body).message, 'body/qty: must be >= 1');
  t.equal((await post('application/xml', '<qty>2</qty>')).status, 415, 'a type the spec does not list is still 415');
});

// a spec with a schema for application/json and an entry without one that also admits JSON
// bodies (`*/*: {}`, `text/json: {}`): a JSON body sent under that entry is held to the JSON
// schema, since an app that reads it as JSON acts on it (it went through unchecked)
const RANGE_SPEC = `openapi: 3.0.3
info: {title: orders, version: '1'}
paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {qty: {type: integer, maximum: 10}}}
          text/json: {}
          '*/*': {}
      responses: {'200': {description: ok}}
`;

t.test("a JSON body under an entry without a schema is held to application/json's", async (t) => {
  const { f, tls } = await startSpecInbound(t, RANGE_SPEC, { maxBodySize: 1024, fileName: 'ranges.yaml' });
  const post = (type: string, body: string) => h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: { 'content-type': type }, body });
  // text/x-json and application/jsonrequest: Rails registers both as JSON and parses them
  for (const type of ['text/json', 'application/vnd.x+json', 'application/problem+json', 'text/x-json', 'application/jsonrequest', 'application/x-json']) {
    const refused = await post(type, '{"qty":1000}');
    t.equal(refused.status, 400, `${type}: over the maximum, refused`);
    t.equal(JSON.parse(refused.body).message, 'body/qty: must be <= 10');
    t.equal((await post(type, '{"qty":2}')).status, 200, `${type}: a valid one passes`);
  }
  t.equal((await post('text/plain', 'qty=1000')).status, 200, 'a body that is not JSON under */* goes on unchecked, as before');
});

// Properties and parameters named as Object.prototype's members (`constructor`, `toString`):
// Ajv reads a value's properties through its prototype unless told otherwise, so a required
// `constructor` was "there" in every body and query (`{}` passed `required: [constructor]`), and
// an optional `toString: {type: integer}` was a function, refused in every request that left it
// out. Over a real inbound in enforce mode: each is now read as the caller sent it
// (src/schema/compilers.ts, ownProperties).

import t from 'tap';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.1.0
info: {title: teams, version: '1'}
paths:
  /teams:
    get:
      parameters:
        - {name: constructor, in: query, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [constructor]
              properties:
                constructor: {description: any value}
                toString: {type: integer}
      responses: {'200': {description: ok}}
    put:
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [constructor]}
      responses: {'200': {description: ok}}
`;

t.test('names of Object.prototype members are read as sent, in bodies and queries', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'teams.yaml' });
  const post = (body: string) => h1Request(f.port, tls, { method: 'POST', path: '/teams', headers: { 'content-type': 'application/json' }, body });
  const message = (body: string) => String(JSON.parse(body).message);

  t.equal((await post('{"constructor":"ferrari"}')).status, 200, 'a valid body without the optional toString passes');
  t.equal((await post('{"constructor":"ferrari","toString":3}')).status, 200, 'and with it');
  const missing = await post('{}');
  t.equal(missing.status, 400, 'a body without the required constructor is refused');
  t.equal(message(missing.body), 'body/constructor: is required');
  const put = await h1Request(f.port, tls, { method: 'PUT', path: '/teams', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(put.status, 400, 'required alone: {} does not have a constructor (it reached the app)');
  t.equal(message(put.body), 'body/constructor: is required');
  const wrong = await post('{"constructor":"ferrari","toString":"x"}');
  t.equal(message(wrong.body), 'body/toString: must be integer', 'toString is checked when given');

  t.equal((await h1Request(f.port, tls, { method: 'GET', path: '/teams?constructor=ferrari' })).status, 200, 'the query parameter given');
  const noQuery = await h1Request(f.port, tls, { method: 'GET', path: '/teams' });
  t.equal(noQuery.status, 400, 'the required query parameter left out');
  t.equal(message(noQuery.body), 'query/constructor: is required');
});

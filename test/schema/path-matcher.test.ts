// src/schema/path-matcher.ts: templates are matched against the path as the app behind will
// read it. A literal segment sent percent-encoded (`/orders/%6Dine`, either hex case) is that
// literal to an app that decodes before it routes (`/orders/mine`), but `/orders/{id}` to one
// that routes on the path as sent and decodes the parameters after (Express): checked as
// either, it reached the other past that operation's own rules (a required header; a body's
// maximum). Such a path reads as two operations, so the spec check refuses it (a `path`
// violation). An encoded `/` stays a character of its segment, a parameter is decoded exactly
// once, an escape that leaves the operation the same passes, and encoded dot segments stay
// refused. Also through a real inbound (HTTP/1.1 and HTTP/2).

import t from 'tap';
import { join } from 'node:path';
import { canonicalPath } from '../../src/http/canonical-path.js';
import { otherReadings, PathMatcher } from '../../src/schema/path-matcher.js';
import { CompiledSpec } from '../../src/schema/spec.js';
import { loadGuard } from '../../src/schema/guard.js';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const SPEC = `openapi: 3.0.3
info: {title: orders, version: "1"}
servers: [{url: /v1}]
paths:
  /orders/mine:
    get:
      parameters:
        - {name: token, in: header, required: true, schema: {type: string, minLength: 8}}
      responses: {"200": {description: ok}}
  /orders/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    get:
      responses: {"200": {description: ok}}
`;

t.test('PathMatcher: literals compare decoded, parameters decoded once', async (t) => {
  const m = new PathMatcher([
    { template: '/orders/mine', method: 'GET', value: 'mine' },
    { template: '/orders/{id}', method: 'GET', value: 'id' },
    { template: '/files/{name}.{ext}', method: 'GET', value: 'file' },
    { template: '/v1/{name}:cancel', method: 'POST', value: 'cancel' },
  ]);
  for (const path of ['/orders/mine', '/orders/%6Dine', '/orders/%6dine', '/%6Frders/%6D%69%6E%65']) t.same(m.match('GET', path), { value: 'mine', params: undefined }, `${path} is /orders/mine`);
  t.same(m.match('GET', '/orders/a%2Fb'), { value: 'id', params: { id: 'a/b' } }, 'an encoded slash is part of the value');
  t.same(m.match('GET', '/orders/%2541'), { value: 'id', params: { id: '%41' } }, 'decoded once, not twice');
  t.same(m.match('GET', '/orders/caf%C3%A9'), { value: 'id', params: { id: 'café' } });
  t.equal(m.match('GET', '/orders%2Fmine'), undefined, 'an encoded slash is not a segment boundary');
  t.same(m.match('GET', '/files/a%2Etxt'), { value: 'file', params: { name: 'a', ext: 'txt' } }, 'a literal inside a segment, encoded');
  t.same(m.match('POST', '/v1/job%3Acancel'), { value: 'cancel', params: { name: 'job' } }, 'a reserved literal, encoded');
});

t.test('otherReadings: without ;params, and up to a decoded ? or #', async (t) => {
  t.same(otherReadings('/orders/mine'), []);
  t.same(otherReadings('/orders/mine;x=1/a;b'), ['/orders/mine/a']);
  t.same(otherReadings(canonicalPath('/orders/mine%3F/x')), ['/orders/mine']);
  t.same(otherReadings(canonicalPath('/orders/mine%3Bv%23y')), ['/orders/mine', '/orders/mine;v']);
});

t.test('the spec: a path that reads as another operation once ;params are dropped or a decoded ? cuts it is refused', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (path: string) => spec.check('GET', path, '', {}, false);
  for (const path of ['/v1/orders/mine;x=1', '/v1/orders/%6Dine;x', '/v1/orders/mine%3Bx', '/v1/orders/mine%3F', '/v1/orders/mine%23top']) {
    t.same(check(path).violation, { kind: 'path', message: `path: ${path} reads as /orders/mine to an app that drops ;params or decodes ? and #` }, `${path}: refused`);
  }
  t.equal(check('/v1/orders;a/mine').violation?.kind, 'undocumented_operation', 'a literal segment with ;params matches nothing here: refused too');
  t.equal(check('/v1/orders/42;v=1').violation, undefined, 'an id with ;params is an id either way');
  t.equal(check('/v1/orders/a%3Fb').violation, undefined, 'read as /orders/a: still an id');
});

t.test('the spec: GET /v1/orders/%6Dine reads as two operations and is refused; encoded dot segments stay refused', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (path: string, headers: Record<string, string> = {}) => spec.check('GET', path, '', headers, false);
  for (const path of ['/v1/orders/%6Dine', '/v1/orders/%6dine']) {
    const twoWays = { kind: 'path', message: `path: ${path} reads as /orders/{id} to an app that routes on the path as sent, before decoding its escapes` };
    t.same(check(path).violation, twoWays, `${path}: /orders/mine decoded, /orders/{id} as sent: refused`);
    t.same(check(path, { token: 'k-12345678' }).violation, twoWays, `${path}: with the header too (an Express app would serve it as {id})`);
  }
  // an escape in the base path: no operation as sent, so only the decoded reading is served
  t.same(check('/%761/orders/mine').violation, { kind: 'header', message: 'header/token: is required' }, '/%761/orders/mine: the header is required');
  t.equal(check('/%761/orders/mine').operation?.template, '/orders/mine', 'its route is /orders/mine');
  t.equal(check('/%761/orders/mine', { token: 'k-12345678' }).violation, undefined, 'with the header it passes');
  t.equal(check('/v1/orders/4%32').violation, undefined, 'an escape that reads as the same operation either way passes (the id 42)');
  t.equal(check('/v1/orders/42').operation?.template, '/orders/{id}', 'other ids are still ids');
  for (const path of ['/v1/orders/%2e%2e/orders/mine', '/v1/orders/%2E%2e', '/v1/orders/%2e/mine', '/v1/orders/mine/%2e%2e/x']) {
    t.equal(check(path).violation?.kind, 'path', `${path}: refused as a path violation`);
    t.equal(check(path).operation, undefined);
  }
});

t.test('through the inbound (enforce): GET /v1/orders/%6Dine never reaches the app, with its header or without', async (t) => {
  const dir = t.testdir({ 'api.yaml': SPEC });
  const f = await startInbound();
  t.teardown(() => f.close());
  f.inbound.setSchema(await loadGuard({ spec: join(dir, 'api.yaml'), mode: 'enforce', maxBodySize: 1024 }));
  const tls = await f.tlsOptions();
  const session = await h2Connect(f.port, tls);
  t.teardown(() => session.close());
  for (const path of ['/v1/orders/%6Dine', '/v1/orders/%6dine']) {
    const h1 = await h1Request(f.port, tls, { path, headers: { token: 'k-12345678' } });
    t.equal(h1.status, 400, `HTTP/1.1 ${path}: refused`);
    t.match(JSON.parse(h1.body), { error: 'schema_violation', message: /reads as \/orders\/\{id\} to an app that routes on the path as sent/ });
    const h2 = await h2Request(session, { ':method': 'GET', ':path': path });
    t.equal(h2.status, 400, `HTTP/2 ${path}: refused`);
    t.equal(h2.headers['x-meshcar-error'], 'schema_violation');
    const withHeader = await h2Request(session, { ':method': 'GET', ':path': path, token: 'k-12345678' });
    t.equal(withHeader.status, 400, `HTTP/2 ${path} with its header: refused too`);
  }
  const ok = await h2Request(session, { ':method': 'GET', ':path': '/v1/orders/mine', token: 'k-12345678' });
  t.equal(ok.status, 200, 'GET /v1/orders/mine with its header: forwarded');
  t.equal(JSON.parse(ok.body.toString()).url, '/v1/orders/mine', 'the app gets the path as sent');
  const records = await f.observer.waitForRequests(7);
  t.ok(records.filter((r) => r.schema?.route === '/v1/orders/mine').length >= 7, 'recorded under the /v1/orders/mine route (the template under the base path)');
});

// A method override is read as the servers behind read its name: a header with `_` for `-`
// (`X_HTTP_Method_Override: DELETE`: CGI and WSGI servers hand it to the app as
// HTTP_X_HTTP_METHOD_OVERRIDE, as they do the dashed name) and a query name as PHP reads it
// (`?+_method=DELETE`, `?%20_method=`: leading spaces dropped; `.method`: `.` read as `_`; a name cut at a NUL), or qs (`[_method]`).
// Both went on to the app unchecked, which ran DELETE where the spec allowed a POST. Over a
// real inbound in enforce mode (src/schema/method-override.ts).

import t from 'tap';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: overrides, version: '1'}
paths:
  /items:
    post:
      responses: {'201': {description: created}}
  /legacy:
    post:
      parameters:
        - {name: X-HTTP-Method-Override, in: header, schema: {type: string, enum: [PATCH]}}
        - {name: _method, in: query, schema: {type: string, enum: [PATCH]}}
      responses: {'200': {description: ok}}
`;

const overridden = (at: string) => `${at}: asks for DELETE, which an app with a method override runs instead of POST, unchecked: send the DELETE request itself`;

t.test('over the inbound: an override spelled as CGI or PHP reads it is refused like the plain one', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'overrides.yaml' });
  const post = (query: string, headers: Record<string, string>) => h1Request(f.port, tls, { method: 'POST', path: `/items${query}`, headers });
  const refusals: Array<[string, Record<string, string>, string]> = [
    ['', { 'X-HTTP-Method-Override': 'DELETE' }, overridden('header/x-http-method-override')],
    ['', { X_HTTP_Method_Override: 'DELETE' }, overridden('header/x-http-method-override (sent as "x_http_method_override")')],
    ['', { X_HTTP_METHOD: 'DELETE' }, overridden('header/x-http-method (sent as "x_http_method")')],
    ['', { 'X-Method_Override': 'DELETE' }, overridden('header/x-method-override (sent as "x-method_override")')],
    ['?_method=DELETE', {}, overridden('query/_method')],
    ['?+_method=DELETE', {}, overridden('query/_method (sent as " _method")')],
    ['?%20_method=DELETE', {}, overridden('query/_method (sent as " _method")')],
    ['?x=1&.method=DELETE', {}, overridden('query/_method (sent as ".method")')],
    ['?_METHOD=DELETE', {}, overridden('query/_method (sent as "_METHOD")')],
    ['?[_method]=DELETE', {}, overridden('query/_method (sent as "[_method]")')],
    ['?_method%00x=DELETE', {}, overridden('query/_method (sent as "_method\\u0000x")')],
  ];
  for (const [query, headers, message] of refusals) {
    const res = await post(query, headers);
    t.equal(res.status, 400, `${query}${JSON.stringify(headers)}: 400`);
    t.equal(JSON.parse(res.body).message, message);
  }
  t.equal((await post('?_method=post', { X_HTTP_Method_Override: 'POST' })).status, 200, 'the method itself is no override');
  t.equal((await post('?x_method=DELETE', { 'x-http_method-overrides': 'DELETE' })).status, 200, 'other names pass');
});

t.test('an override the operation declares is held to its parameter, in every spelling', async (t) => {
  const spec = await CompiledSpec.load(join(t.testdir({ 'api.yaml': SPEC }), 'api.yaml'));
  const post = (query: string, headers: Record<string, string>) => spec.check('POST', '/legacy', query, headers, false).violation;
  t.equal(post('_method=PATCH', { 'x-http-method-override': 'PATCH' }), undefined, 'as declared: passes');
  t.same(post('', { x_http_method_override: 'PATCH' }), { kind: 'header', message: 'header/x-http-method-override: is given as x_http_method_override, which CGI and WSGI servers read as x-http-method-override; send it as x-http-method-override' });
  t.same(post('+_method=DELETE', {})?.kind, 'query', "a declared query name's other spelling is refused");
});

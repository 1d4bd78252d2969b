// src/schema: the orders spec compiled once and every kind of violation found with its
// location and rule; broken specs named with their file and JSON pointer, in-process and by
// `meshcar check`.

import t from 'tap';
import { join, resolve } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { checkJsonBody } from '../../src/schema/json-body.js';
import { SpecError } from '../../src/schema/spec-error.js';
import { makePki } from '../helpers/pki.js';
import { runCli } from '../helpers/ca.js';
import { checkSpecs } from '../../src/doctor/openapi.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';

const ORDERS = resolve('config/orders.openapi.yaml');
const KEY = { 'idempotency-key': 'k-12345678' };

t.test('the orders spec: each request is matched to its operation and held against it', async (t) => {
  const spec = await CompiledSpec.load(ORDERS);
  const check = (method: string, path: string, query = '', headers: Record<string, string> = {}, hasBody = false) => spec.check(method, path, query, headers, hasBody);
  t.same(check('GET', '/orders/42'), { operation: spec.operationOf('GET', '/orders/42'), route: '/orders/{id}', violation: undefined, body: undefined }, 'a valid call passes');
  t.equal(check('GET', '/orders/42').operation?.template, '/orders/{id}', 'the template is the route');
  t.same([check('GET', '/orders/abc').route, check('PATCH', '/orders/1').route], ['/orders/{id}', undefined], 'a violation keeps the route; no operation, none');
  t.same(check('GET', '/orders/abc').violation, { kind: 'path', message: 'path/id: must be integer' });
  t.same(check('GET', '/orders/0').violation, { kind: 'path', message: 'path/id: must be >= 1' });
  t.same(check('GET', '/orders').violation, { kind: 'query', message: 'query/status: is required' });
  t.same(check('GET', '/orders', 'status=open&limit=500').violation, { kind: 'query', message: 'query/limit: must be <= 100' });
  t.equal(check('GET', '/orders', 'status=open&limit=5').violation, undefined, 'query values are coerced to their types');
  t.same(check('GET', '/orders', 'status=open&limit=5&limit=1000').violation, { kind: 'query', message: 'query/limit: must be given once (it is not an array)' }, 'a repeated limit is not checked on its first copy only');
  t.same(check('POST', '/orders', '', { 'content-type': 'application/json' }, true).violation, { kind: 'header', message: 'header/idempotency-key: is required' });
  t.same(check('POST', '/orders', '', { ...KEY, 'content-type': 'text/plain' }, true).violation, {
    kind: 'content_type',
    message: 'content_type: Content-Type text/plain is not accepted (send application/json)',
  });
  t.same(check('POST', '/orders', '', KEY, false).violation, { kind: 'body', message: 'body: is required' });
  t.same(check('PATCH', '/orders/1').violation, { kind: 'undocumented_operation', message: 'PATCH /orders/1 is not an operation of the API' });
  t.same(check('GET', '/customers').violation?.kind, 'undocumented_operation');
  // paths an app may read as another: never the operation they seem to match
  for (const path of ['/orders/..%2Fadmin', '/orders/%2e%2e%2fadmin%2fusers', '/orders/..;x=1', '/orders/%252e%252e', '//orders/1', '/orders/./1']) {
    t.equal(check('GET', path).violation?.kind, 'path', `${path}: a path violation`);
    t.equal(check('GET', path).operation, undefined);
  }
  t.same(check('GET', `/${'x'.repeat(10_000)}`).violation?.message.length, 251, 'a long path is quoted cut short');

  const post = check('POST', '/orders', '', { ...KEY, 'content-type': 'application/json; charset=utf-8' }, true);
  t.equal(post.violation, undefined);
  t.ok(post.body, 'an operation with a JSON body schema asks for the body');
  t.notOk(check('GET', '/orders/7').body, 'one without does not: it keeps streaming');
  const body = post.body!;
  const json = (value: unknown) => checkJsonBody(body, Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));
  t.equal(json({ item: 'book', qty: 2 }), undefined);
  t.same(json({ item: 'book', qty: 0 }), { kind: 'body', message: 'body/qty: must be >= 1' });
  t.same(json({ item: 'book' }), { kind: 'body', message: 'body/qty: is required' });
  t.same(json({ item: 'book', qty: 1, price: 3 }), { kind: 'body', message: 'body/price: is not allowed' });
  t.match(json('{"item":'), { kind: 'body', message: /^body: is not valid JSON/ });
  t.same(checkJsonBody(body, Buffer.from([0x7b, 0x22, 0x69, 0x74, 0x65, 0x6d, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), { kind: 'body', message: 'body: is not valid UTF-8' }, 'invalid UTF-8 is refused, not read as U+FFFD');
  for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8', 'application/json; foo=bar']) {
    t.equal(check('POST', '/orders', '', { ...KEY, 'content-type': type }, true).violation, undefined, `${type}: accepted`);
  }
  for (const type of ['application/json; charset=iso-8859-1', 'application/json; charset=utf-16']) {
    t.same(check('POST', '/orders', '', { ...KEY, 'content-type': type }, true).violation, { kind: 'content_type', message: 'content_type: a JSON body must be UTF-8 (charset=utf-8, or no charset)' }, `${type}: refused`);
  }
});

t.test('a query parameter that is not an array, given more than once, is refused; an array keeps every value', async (t) => {
  const dir = t.testdir({
    'api.yaml':
      'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /items:\n    get:\n      parameters:\n' +
      '        - {name: limit, in: query, schema: {type: integer, maximum: 100}}\n' +
      '        - {name: tag, in: query, schema: {type: array, items: {type: string, maxLength: 3}}}\n' +
      '        - {name: ids, in: query, schema: {type: [array, "null"], items: {type: integer}}}\n' +
      '        - {name: sort, in: query, style: spaceDelimited, schema: {type: string}}\n' +
      '      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const query = (q: string) => spec.check('GET', '/items', q, {}, false).violation;
  t.equal(query('limit=5'), undefined);
  // Django and Rails read the last copy, so checking the first let limit=1000 through
  t.same(query('limit=5&limit=1000'), { kind: 'query', message: 'query/limit: must be given once (it is not an array)' });
  t.same(query('limit=1000&limit=5'), { kind: 'query', message: 'query/limit: must be given once (it is not an array)' });
  t.same(query('limit=5&li%6dit=5'), { kind: 'query', message: 'query/limit: must be given once (it is not an array)' }, 'also when one copy is percent-encoded');
  t.equal(query('tag=a&tag=bc'), undefined, 'an array parameter: repeated (form, explode)');
  t.same(query('tag=a&tag=toolong'), { kind: 'query', message: 'query/tag/1: must NOT have more than 3 characters' }, 'every value of an array is checked');
  t.same(query('ids=1&ids=x'), { kind: 'query', message: 'query/ids/1: must be integer' }, 'a 3.1 type list that includes array');
  t.equal(query('sort=a&sort=b'), undefined, 'a parameter in a style not interpreted is left alone, repeated or not');
});

t.test('arrays in one value: a query array with explode: false, path and header arrays (style simple) are split at their commas', async (t) => {
  const dir = t.testdir({
    'api.yaml':
      'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /items/{ids}:\n    get:\n      parameters:\n' +
      '        - {name: ids, in: path, required: true, schema: {type: array, items: {type: integer}, maxItems: 3}}\n' +
      '        - {name: tags, in: query, explode: false, schema: {type: array, items: {type: string, enum: [a, b, c]}}}\n' +
      '        - {name: X-Codes, in: header, schema: {type: array, items: {type: integer, maximum: 99}}}\n' +
      '      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (path: string, query = '', headers: Record<string, string> = {}) => spec.check('GET', path, query, headers, false).violation;
  t.equal(check('/items/1,2,3'), undefined, 'path: 1,2,3 is three integers');
  t.same(check('/items/1,x'), { kind: 'path', message: 'path/ids/1: must be integer' }, 'path: every item is checked');
  t.same(check('/items/1,2,3,4'), { kind: 'path', message: 'path/ids: must NOT have more than 3 items' }, 'path: the items are counted');
  t.equal(check('/items/1', 'tags=a,b'), undefined, 'query (explode: false): a,b is two items');
  t.same(check('/items/1', 'tags=a,zz'), { kind: 'query', message: 'query/tags/1: must be one of "a", "b", "c"' }, 'query: every item is checked');
  t.same(check('/items/1', 'tags=a&tags=b'), { kind: 'query', message: 'query/tags: must be given once (it is not an array)' }, 'query (explode: false): the items come in one value, not repeated');
  t.same(check('/items/1', 'tags=a%2Cb'), { kind: 'query', message: 'query/tags/0: must be one of "a", "b", "c"' }, 'query: an encoded comma is data (a,b is one item), not a delimiter');
  t.equal(check('/items/1', 'x=1&t%61gs=b,c'), undefined, 'query: the name found encoded too');
  t.equal(check('/items/1', '', { 'x-codes': '1, 2,3' }), undefined, 'header: 1, 2,3 is three integers');
  t.same(check('/items/1', '', { 'x-codes': '1,100' }), { kind: 'header', message: 'header/x-codes/1: must be <= 99' }, 'header: every item is checked');
});

t.test('a gRPC method is a POST operation; its framed body (application/grpc+json too) is never validated as one JSON document', async (t) => {
  const dir = t.testdir({
    'api.yaml':
      'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /pkg.Svc/Get:\n    post:\n      requestBody:\n        content:\n' +
      '          application/grpc+json: {schema: {type: object, required: [id]}}\n          application/json: {schema: {type: object, required: [id]}}\n' +
      '      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const grpc = spec.check('POST', '/pkg.Svc/Get', '', { 'content-type': 'application/grpc+json' }, true);
  t.same([grpc.violation, grpc.body], [undefined, undefined], 'listed: it streams on, its body unread');
  t.ok(spec.check('POST', '/pkg.Svc/Get', '', { 'content-type': 'application/json' }, true).body, 'the same operation in JSON is validated');
  t.same(spec.check('POST', '/pkg.Svc/Other', '', { 'content-type': 'application/grpc' }, true).violation?.kind, 'undocumented_operation', 'a method the spec lacks');
  t.same(spec.check('POST', '/pkg.Svc/Get', '', { 'content-type': 'application/grpc+proto' }, true).violation?.kind, 'content_type', 'a gRPC type the operation does not list');
});

t.test('a schema under a media range (*/*, application/*) holds the JSON bodies it admits; others stream on unread', async (t) => {
  const dir = t.testdir({
    'api.yaml':
      'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /any:\n    post:\n      requestBody:\n        content:\n' +
      '          "*/*": {schema: {type: object, required: [id]}}\n' +
      '      responses: {"200": {description: ok}}\n  /app:\n    post:\n      requestBody:\n        content:\n' +
      '          "application/*": {schema: {type: object, required: [id]}}\n' +
      '      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  for (const path of ['/any', '/app']) {
    for (const type of ['application/json', 'Application/JSON; charset=utf-8', 'application/vnd.x+json']) {
      const body = spec.check('POST', path, '', { 'content-type': type }, true).body;
      t.ok(body, `${path}, ${type}: validated`);
      t.same(checkJsonBody(body!, Buffer.from('{}')), { kind: 'body', message: 'body/id: is required' });
    }
    const octets = spec.check('POST', path, '', { 'content-type': 'application/octet-stream' }, true);
    t.same([octets.violation, octets.body], [undefined, undefined], `${path}: a non-JSON body it admits streams on`);
  }
});

t.test('OpenAPI 3.0 exclusiveMinimum: true (a flag on minimum) compiles and holds', async (t) => {
  const dir = t.testdir({
    'api.yaml': 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /p/{n}:\n    get:\n      parameters:\n        - {name: n, in: path, required: true, schema: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 9, exclusiveMaximum: false}}\n      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  t.same(spec.check('GET', '/p/0', '', {}, false).violation, { kind: 'path', message: 'path/n: must be > 0' });
  t.equal(spec.check('GET', '/p/9', '', {}, false).violation, undefined, 'exclusiveMaximum: false keeps maximum inclusive');
});

t.test("servers' base paths prefix every path; HEAD is checked as GET", async (t) => {
  const dir = t.testdir({
    'api.yaml': 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\nservers: [{url: "https://api.example.com/v1/"}, {url: /api/v1}]\npaths:\n  /items/{id}:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]\n      responses: {"200": {description: ok}}\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const check = (method: string, path: string) => spec.check(method, path, '', {}, false);
  t.same([check('GET', '/v1/items/3').violation, check('GET', '/v1/items/3').operation?.template], [undefined, '/items/{id}']);
  t.equal(check('GET', '/api/v1/items/3').violation, undefined, 'under either server');
  t.same(check('GET', '/v1/items/x').violation, { kind: 'path', message: 'path/id: must be integer' });
  t.same(check('GET', '/items/3').violation?.kind, 'undocumented_operation', 'not without the base path');
  t.same(check('GET', '/v1items/3').violation?.kind, 'undocumented_operation', 'a prefix is a whole segment');
  t.equal(check('HEAD', '/v1/items/3').violation, undefined, 'HEAD is GET without the body');
  t.same(check('PUT', '/v1/items/3').violation?.kind, 'undocumented_operation');
  // the route is the path as called: /v1/health and an unmatched /health are two routes, not one
  t.same([check('GET', '/v1/items/3').route, check('GET', '/api/v1/items/x').route, check('HEAD', '/v1/items/3').route, check('GET', '/items/3').route], ['/v1/items/{id}', '/api/v1/items/{id}', '/v1/items/{id}', undefined], 'the route is under the base path the call came by');
  t.same(spec.routes(), [{ method: 'GET', route: '/api/v1/items/{id}' }, { method: 'GET', route: '/v1/items/{id}' }], 'each operation under each base path');
});

t.test('templates: a literal path wins over a parameter; path-level and operation parameters merge; OpenAPI 3.1', async (t) => {
  const dir = t.testdir({
    'api.json': JSON.stringify({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      paths: {
        '/items/{id}': {
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
          get: { parameters: [{ name: 'x-trace', in: 'header', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'ok' } } },
        },
        '/items/mine': { get: { responses: { 200: { description: 'ok' } } } },
        '/files/{name}.{ext}': { get: { parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }, { name: 'ext', in: 'path', required: true, schema: { enum: ['txt'] } }], responses: { 200: { description: 'ok' } } } },
        '/search': { get: { parameters: [{ name: 'filter', in: 'query', required: true, style: 'deepObject', schema: { type: 'object' } }, { name: 'q', in: 'query', required: true, content: { 'application/json': { schema: { type: 'object' } } } }], responses: { 200: { description: 'ok' } } } },
        '/notes': { put: { requestBody: { content: { 'application/json': { schema: { type: ['object', 'null'] } } } }, responses: { 204: { description: 'ok' } } } },
      },
    }),
  });
  const spec = await CompiledSpec.load(join(dir, 'api.json'));
  t.equal(spec.check('GET', '/items/mine', '', {}, false).violation, undefined, '/items/mine is its own operation, not a bad id');
  t.same(spec.check('GET', '/items/5', '', {}, false).violation, { kind: 'header', message: 'header/x-trace: is required' });
  t.same(spec.check('GET', '/items/x', '', { 'x-trace': '1' }, false).violation, { kind: 'path', message: 'path/id: must be integer' });
  t.equal(spec.check('GET', '/files/a%20b.txt', '', {}, false).violation, undefined, 'a parameter inside a segment, percent-decoded');
  t.equal(spec.check('GET', '/search', 'filter[a]=1&q=%7B%7D', {}, false).violation, undefined, 'deepObject and content parameters are left alone, not misjudged');
  t.same(spec.check('GET', '/files/a.pdf', '', {}, false).violation, { kind: 'path', message: 'path/ext: must be one of "txt"' });
  const put = spec.check('PUT', '/notes', '', { 'content-type': 'application/merge+json' }, true);
  t.same(put.violation?.kind, 'content_type', 'media types are matched exactly or by range');
  const body = spec.check('PUT', '/notes', '', { 'content-type': 'application/json' }, true).body!;
  t.equal(checkJsonBody(body, Buffer.from('null')), undefined, '3.1 type lists (JSON Schema 2020-12)');
  t.same(checkJsonBody(body, Buffer.from('3')), { kind: 'body', message: 'body: must be object,null' });
});

const BROKEN_REF = `openapi: 3.0.3
info: {title: orders, version: "1"}
paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Missing'}
      responses:
        "201": {description: created}
`;

t.test('a broken spec is a SpecError with its file and the JSON pointer of the node at fault', async (t) => {
  const dir = t.testdir({
    'ref.yaml': BROKEN_REF,
    'where.yaml': 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths:\n  /a/{id}:\n    get:\n      parameters:\n        - {name: id, in: body, required: true}\n      responses: {"200": {description: ok}}\n',
    'swagger.yaml': 'swagger: "2.0"\ninfo: {title: t, version: "1"}\npaths: {}\n',
    // the parser lets an unnamed parameter through; OpenAPI would read it as one, the matcher as text
    'unnamed.yaml': 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /items/{}:\n    get:\n      responses: {"200": {description: ok}}\n',
    'schema.yaml': 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {type: object, required: 3}\n      responses: {"200": {description: ok}}\n',
  });
  const failure = async (file: string) => {
    const err = await CompiledSpec.load(join(dir, file)).then(() => undefined, (e: unknown) => e);
    t.type(err, SpecError, `${file} is refused`);
    return err as SpecError;
  };
  const ref = await failure('ref.yaml');
  t.equal(ref.pointer, '/paths/~1orders/post/requestBody/content/application~1json/schema');
  t.match(ref.message, `${join(dir, 'ref.yaml')}#/paths/~1orders/post/requestBody/content/application~1json/schema: Missing $ref pointer "#/components/schemas/Missing"`);
  t.equal((await failure('where.yaml')).pointer, '/paths/~1a~1{id}/get/parameters/0/in', 'the first place that breaks the OpenAPI schema');
  t.match((await failure('swagger.yaml')).message, /give an OpenAPI 3.0 or 3.1 document/);
  t.match(await failure('unnamed.yaml'), { pointer: '/paths/~1items~1{}', detail: /a path parameter without a name \(\{\}\): name it/ }, 'an unnamed path parameter');
  const schema = await failure('schema.yaml');
  t.equal(schema.pointer, '/paths/~1a/post/requestBody/content/application~1json/schema');
  t.match(schema.detail, /the schema does not compile/);
  t.match((await failure('absent.yaml')).message, /does not exist/);
});

t.test('meshcar check reports a broken spec at the key naming it, with the spec file and JSON pointer', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'orders.openapi.yaml': BROKEN_REF });
  const config = (spec: string) => `service: orders
trustDomain: mesh.local
identity:
  ca: {url: https://127.0.0.1:8443, bundle: ${join(dir, 'bundle.pem')}}
  dir: ${join(dir, 'id')}
inbound:
  listen: 127.0.0.1:0
  app: http://127.0.0.1:8080
  openapi:
    spec: ${spec}
    mode: enforce
`;
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'bad.yaml'), config(join(dir, 'orders.openapi.yaml')));
  await writeFile(join(dir, 'good.yaml'), config(ORDERS));
  // meshcar doctor: one check per spec
  const [badChecks, goodChecks] = await Promise.all([checkSpecs(await loadSidecarConfig(join(dir, 'bad.yaml'))), checkSpecs(await loadSidecarConfig(join(dir, 'good.yaml')))]);
  t.match(badChecks, [{ name: 'openapi inbound.openapi', status: 'fail', message: /orders\.openapi\.yaml#\/paths\/~1orders\/post\/requestBody\/content\/application~1json\/schema: Missing \$ref/ }]);
  t.match(goodChecks, [{ name: 'openapi inbound.openapi', status: 'ok', message: /4 operations, enforce mode/ }]);
  const [bad, good] = await Promise.all([runCli(['check', '--config', join(dir, 'bad.yaml')]), runCli(['check', '--config', join(dir, 'good.yaml')])]);
  t.equal(good.code, 0, `a good spec passes: ${good.stdout}${good.stderr}`);
  // meshcar run: the specs load before anything starts (no CA is reached), and a broken one stops it
  const run = await runCli(['run', '--config', join(dir, 'bad.yaml')]);
  t.not(run.code, 0);
  t.match(run.stderr, `meshcar: inbound.openapi.spec: ${join(dir, 'orders.openapi.yaml')}#/paths/~1orders/post/requestBody/content/application~1json/schema: Missing $ref pointer`);
  t.equal(bad.code, 1);
  t.match(
    bad.stdout + bad.stderr,
    `bad.yaml:10:5: inbound.openapi.spec: ${join(dir, 'orders.openapi.yaml')}#/paths/~1orders/post/requestBody/content/application~1json/schema: Missing $ref pointer`,
  );
});

t.test('a sidecar without a spec never loads the OpenAPI parser or Ajv (about 11 MB, 100 ms at start)', async (t) => {
  const { execFile } = await import('node:child_process');
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const loaded = () => Object.keys(require.cache).filter((k) => /node_modules\\/(ajv|ajv-formats|@apidevtools)\\//.test(k)).length;
    await import(${JSON.stringify(resolve('dist/sidecar.js'))});
    const before = loaded();
    // the spec module is in that graph now (a failed lazy import would stay failed); its packages load on the first compile
    const { compilersFor } = await import(${JSON.stringify(resolve('dist/schema/compilers.js'))});
    compilersFor('3.0.3');
    console.log(JSON.stringify({ before, after: loaded() }));`;
  const out = await new Promise<string>((done, fail) => execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout) => (err ? fail(err) : done(stdout))));
  const { before, after } = JSON.parse(out) as { before: number; after: number };
  t.equal(before, 0, 'nothing of them once the sidecar module graph is loaded');
  t.ok(after > 0, 'they load when a spec is compiled (the check sees them)');
});

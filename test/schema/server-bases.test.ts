// `servers` on a path item or an operation: OpenAPI 3 serves an operation under its own
// servers, else its path item's, else the document's. Only the document's were read, so
// `/health` with `servers: [{url: /}]` under a document at /v1 was 404 as called, and passed
// as /v1/health, which the app does not serve. Over a real inbound in enforce mode
// (src/schema/server-bases.ts nearestServers, operation-index.ts).

import t from 'tap';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: servers, version: '1'}
servers: [{url: /v1}]
paths:
  /health:
    servers: [{url: /}]
    get: {responses: {'200': {description: ok}}}
  /admin/op:
    get:
      servers: [{url: 'https://admin.example.com/internal'}]
      responses: {'200': {description: ok}}
  /jobs:
    servers: [{url: /batch}]
    get: {responses: {'200': {description: ok}}}
    post:
      servers: [{url: /queue}, {url: /queue/v2}]
      responses: {'200': {description: ok}}
  /orders/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string, maxLength: 8}}]
      responses: {'200': {description: ok}}
  /orders/mine:
    get:
      servers: [{url: /internal}]
      responses: {'200': {description: ok}}
`;

t.test("over the inbound: an operation is served under its own servers, else its path item's, else the document's", async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 1024, fileName: 'servers.yaml' });
  const call = async (method: string, path: string) => (await h1Request(f.port, tls, { method, path })).status;
  const cases: Array<[string, string, number, string]> = [
    ['GET', '/health', 200, "the path item's servers (/) override the document's"],
    ['GET', '/v1/health', 404, 'not under the document\'s'],
    ['GET', '/internal/admin/op', 200, "the operation's servers (a full URL: its path)"],
    ['GET', '/v1/admin/op', 404, 'not under the document\'s'],
    ['GET', '/batch/jobs', 200, "GET: the path item's"],
    ['POST', '/batch/jobs', 404, "POST has servers of its own: not the path item's"],
    ['POST', '/queue/jobs', 200, "POST: the operation's"],
    ['POST', '/queue/v2/jobs', 200, 'under each of them'],
    ['GET', '/v1/orders/7', 200, "no servers of its own: the document's"],
    ['GET', '/orders/7', 404, 'not at the root'],
    ['GET', '/internal/orders/mine', 200, 'a literal template under another base path'],
    ['GET', '/v1/orders/mine', 200, 'under /v1, mine is an id of /orders/{id}: /orders/mine is not served there'],
    ['GET', '/v1/orders/toolongid', 400, 'and held to its rules'],
  ];
  for (const [method, path, status, why] of cases) t.equal(await call(method, path), status, `${method} ${path}: ${status}, ${why}`);
});

t.test('routes and metric labels are the paths as called, under each operation\'s base path', async (t) => {
  const spec = await CompiledSpec.load(join(t.testdir({ 'api.yaml': SPEC }), 'api.yaml'));
  const check = (method: string, path: string) => spec.check(method, path, '', {}, false);
  t.same([check('GET', '/health').route, check('POST', '/queue/v2/jobs').route, check('GET', '/v1/orders/mine').route, check('GET', '/v1/orders/mine').operation?.template], ['/health', '/queue/v2/jobs', '/v1/orders/{id}', '/orders/{id}']);
  t.same(
    spec.routes().map((r) => `${r.method} ${r.route}`).sort(),
    ['GET /batch/jobs', 'GET /health', 'GET /internal/admin/op', 'GET /internal/orders/mine', 'GET /v1/orders/{id}', 'POST /queue/jobs', 'POST /queue/v2/jobs'],
  );
});

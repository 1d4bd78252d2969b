// src/metrics/discovery.ts: each operation is listed once. Routes that differ from a spec's
// template only in their parameters' names (a learned /orders/{id}, the spec's
// /orders/{orderId}) are one path, under the spec's template, with the calls of both; two
// learned or documented twins are one path too; a `{}` is a parameter with a name; workers'
// rows merge the same way. Every document passes the OpenAPI parser and the checks it lacks
// (test/helpers/discovery-doc.ts). The same through real sidecars: test/e2e/openapi-discovery.

import t, { type Test } from 'tap';
import { discoveryDocument, type DiscoveryRow, type DocumentedOperation } from '../../src/metrics/discovery.js';
import { mergeEndpoints } from '../../src/workers/merge-endpoints.js';
import { discoveryProblems } from '../helpers/discovery-doc.js';

const row = (route: string, method: string, count: number, documented: boolean | undefined, extra: Partial<DiscoveryRow> = {}): DiscoveryRow => ({
  direction: 'inbound',
  peer: 'frontend',
  method,
  route,
  count,
  responses: ['200'],
  documented,
  ...extra,
});
const op = (method: string, template: string): DocumentedOperation => ({ method, template });

type Doc = { paths: Record<string, Record<string, Record<string, unknown>>>; 'x-meshcar-upstreams': Record<string, { paths: Doc['paths'] }> };

async function documentOf(t: Test, rows: readonly DiscoveryRow[], documented: Parameters<typeof discoveryDocument>[2] = {}): Promise<Doc> {
  const doc = discoveryDocument('orders', rows, documented);
  t.same(await discoveryProblems(doc), [], 'a valid OpenAPI 3.1 document, each path once');
  return doc as unknown as Doc;
}

t.test("a learned route beside the spec's template of another parameter name: one path, the spec's, with the calls", async (t) => {
  const rows = [
    row('/orders/{id}', 'GET', 2, undefined), // counted before a reload brought the spec
    row('/orders/{orderId}', 'GET', 3, true),
    row('/orders/{id}', 'PATCH', 1, false), // a method the spec lacks
  ];
  const doc = await documentOf(t, rows, { inbound: [op('GET', '/orders/{orderId}'), op('DELETE', '/orders/{orderId}')] });
  t.same(Object.keys(doc.paths), ['/orders/{orderId}']);
  const item = doc.paths['/orders/{orderId}'] as Record<string, Record<string, unknown>>;
  t.match(item.get, { 'x-meshcar-calls': 5, 'x-meshcar-documented': true, parameters: [{ name: 'orderId', in: 'path' }] }, 'both rows, under the documented template');
  t.match(item.patch, { 'x-meshcar-calls': 1, 'x-meshcar-documented': false }, 'a shadow API on the same path');
  t.match(item.delete, { 'x-meshcar-calls': 0, 'x-meshcar-documented': true, responses: { default: {} } });
});

t.test('twins among learned routes and within a spec are one path; the choice does not depend on the rows order', async (t) => {
  const rows = [row('/carts/{cartId}/items/{id}', 'GET', 1, undefined), row('/carts/{id}/items/{id}', 'GET', 2, undefined), row('/carts/{id}/items/{id2}', 'PUT', 1, undefined)];
  const forward = await documentOf(t, rows);
  const backward = await documentOf(t, [...rows].reverse());
  t.same(forward.paths, backward.paths, 'the same document either way');
  t.same(Object.keys(forward.paths), ['/carts/{cartId}/items/{id}']);
  t.match(forward.paths['/carts/{cartId}/items/{id}'], { get: { 'x-meshcar-calls': 3 }, put: { 'x-meshcar-calls': 1 } });
  // a spec may have twins itself (the loader takes them): the first written names the path
  const spec = await documentOf(t, [], { inbound: [op('GET', '/orders/{id}'), op('PUT', '/orders/{orderId}')] });
  t.same(Object.keys(spec.paths), ['/orders/{id}']);
  t.same(Object.keys(spec.paths['/orders/{id}'] ?? {}).sort(), ['get', 'put']);
});

t.test('{} is a parameter: named after a twin, else param, unique', async (t) => {
  const doc = await documentOf(t, [row('/items/{id}', 'GET', 4, false)], { inbound: [op('GET', '/items/{}'), op('GET', '/a/{}/b/{}'), op('GET', '/files/{}.{}')] });
  t.same(Object.keys(doc.paths).sort(), ['/a/{param}/b/{param2}', '/files/{param}.{param2}', '/items/{id}']);
  t.match(doc.paths['/items/{id}']?.get, { 'x-meshcar-calls': 4, 'x-meshcar-documented': true });
});

t.test("the spec's base path: documented operations are listed as routed, under it", async (t) => {
  // spec.routes() gives each template under the base path, as the calls' routes are
  const rows = [row('/api/v1/orders/{orderId}', 'GET', 2, true), row('/api/v1/orders/{id}', 'PATCH', 1, false), row('/orders/{id}', 'GET', 1, false)];
  const doc = await documentOf(t, rows, { inbound: [op('GET', '/api/v1/orders/{orderId}')] });
  t.same(Object.keys(doc.paths).sort(), ['/api/v1/orders/{orderId}', '/orders/{id}'], 'a call without the base path is another path (the spec does not serve it)');
  t.match(doc.paths['/api/v1/orders/{orderId}'], { get: { 'x-meshcar-calls': 2 }, patch: { 'x-meshcar-calls': 1 } });
});

t.test("upstreams, and workers' rows merged by the primary: the same, per upstream", async (t) => {
  const out = (route: string, count: number, documented: boolean | undefined) => row(route, 'GET', count, documented, { direction: 'outbound', peer: 'orders' });
  const worker = (rows: DiscoveryRow[]) => ({ endpoints: [], discovery: rows });
  // worker 1 saw the calls before a reload brought the spec, worker 2 after
  const merged = mergeEndpoints([worker([out('/orders/{id}', 2, undefined), row('/orders/{id}', 'GET', 1, undefined)]), worker([out('/orders/{orderId}', 3, true), row('/orders/{orderId}', 'GET', 1, true)])]);
  const spec = [op('GET', '/orders/{orderId}')];
  const doc = await documentOf(t, merged.discovery, { inbound: spec, upstreams: new Map([['orders', spec]]) });
  t.same(Object.keys(doc.paths), ['/orders/{orderId}']);
  t.match(doc.paths['/orders/{orderId}']?.get, { 'x-meshcar-calls': 2 });
  t.same(Object.keys(doc['x-meshcar-upstreams'].orders?.paths ?? {}), ['/orders/{orderId}']);
  const called = doc['x-meshcar-upstreams'].orders?.paths['/orders/{orderId}']?.get;
  t.match(called, { 'x-meshcar-calls': 5 });
  // its caller is this service: the upstream is not its own caller
  t.notOk(called !== undefined && 'x-meshcar-callers' in called, 'no x-meshcar-callers on an upstream operation');
  t.same(doc.paths['/orders/{orderId}']?.get?.['x-meshcar-callers'], ['frontend'], 'an inbound one keeps its callers');
});

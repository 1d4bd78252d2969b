// spec-changes.ts: which specs a reload changed under an unchanged key, and the document
// comparison behind it: data and key order count, a shared $ref target is compared once (a
// document sharing one schema 2^40 ways is compared at once), and a spec added, dropped or
// moved to another file is left to the reload plan to name.

import t from 'tap';
import { appliedWithSpecs, sameDocument } from '../../src/schema/spec-changes.js';
import type { Guards } from '../../src/schema/guards.js';
import type { SchemaGuard } from '../../src/schema/guard.js';

/** A guard as far as spec-changes.ts reads it: its spec's file and document. */
const guard = (file: string, document: unknown) => ({ spec: { file, document } }) as unknown as SchemaGuard;
const guards = (inbound: SchemaGuard | undefined, upstreams: Record<string, SchemaGuard> = {}): Guards => ({ inbound, upstreams: new Map(Object.entries(upstreams)) });

/** A chain of `depth` objects, each using the next twice: 2^depth uses of the last one. */
function shared(depth: number, leaf: unknown): unknown {
  let node: unknown = leaf;
  for (let i = 0; i < depth; i++) node = { a: node, b: node };
  return node;
}

t.test('sameDocument', async (t) => {
  t.ok(sameDocument({ paths: { '/a': { get: { x: [1, 'two', null, true] } } } }, { paths: { '/a': { get: { x: [1, 'two', null, true] } } } }), 'equal data');
  t.notOk(sameDocument({ x: [1, 2] }, { x: [1, 3] }), 'a value differs');
  t.notOk(sameDocument({ x: 1 }, { x: 1, y: 2 }), 'a key more');
  t.notOk(sameDocument({ a: 1, b: 2 }, { b: 2, a: 1 }), 'key order counts (a reordered file was edited)');
  t.notOk(sameDocument({ x: [] }, { x: {} }), 'an array is not an object');
  t.notOk(sameDocument({ d: new Date(0) }, { d: new Date(1) }), 'dates by their time');
  t.ok(sameDocument({ d: new Date(5) }, { d: new Date(5) }));
  const started = Date.now();
  t.ok(sameDocument(shared(40, { type: 'string' }), shared(40, { type: 'string' })), 'shared 2^40 ways: same');
  t.notOk(sameDocument(shared(40, { type: 'string' }), shared(40, { type: 'integer' })), 'and a change at the bottom is seen');
  t.ok(Date.now() - started < 1000, `compared in ${Date.now() - started} ms, not per use`);
});

t.test('appliedWithSpecs', async (t) => {
  const v1 = { paths: { '/orders': {} } };
  const v2 = { paths: { '/orders': {}, '/refunds': {} } };
  t.same(appliedWithSpecs([], guards(guard('/s/in.yaml', v1)), guards(guard('/s/in.yaml', structuredClone(v1)))), [], 'the same file, the same document: nothing');
  t.same(appliedWithSpecs(['log.level'], guards(guard('/s/in.yaml', v1)), guards(guard('/s/in.yaml', v2))), ['log.level', 'inbound.openapi.spec'], 'the same file, another document');
  t.same(
    appliedWithSpecs([], guards(undefined, { payments: guard('/s/p.yaml', v1), orders: guard('/s/o.yaml', v1) }), guards(undefined, { payments: guard('/s/p.yaml', v1), orders: guard('/s/o.yaml', v2) })),
    ['outbound.upstreams.orders.openapi.spec'],
    'per upstream',
  );
  t.same(appliedWithSpecs(['inbound.openapi.spec'], guards(guard('/s/in.yaml', v1)), guards(guard('/s/other.yaml', v2))), ['inbound.openapi.spec'], 'another file: the plan named it already, once');
  t.same(appliedWithSpecs(['inbound.openapi'], guards(undefined), guards(guard('/s/in.yaml', v1))), ['inbound.openapi'], 'a spec added: the plan names it');
  t.same(appliedWithSpecs(['inbound.openapi'], guards(guard('/s/in.yaml', v1)), guards(undefined)), ['inbound.openapi'], 'a spec dropped: the plan names it');
});

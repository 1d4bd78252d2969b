// A spec with a recursive schema (a circular $ref) is refused at load, and the refusal says
// where the cycle is and the way around it: a schema without the cycle, or `{}` for the
// recursive part (src/schema/spec-document.ts). Circular $refs are not supported: every
// schema is expanded into one plain tree before it is compiled.

import t from 'tap';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';

const TREE = (kids: string) => `openapi: 3.0.3
info: {title: tree, version: '1'}
paths:
  /tree:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Node'}
      responses: {'200': {description: ok}}
components:
  schemas:
    Node:
      type: object
      properties:
        v: {type: integer}
        kids: ${kids}
`;

t.test('a recursive schema is refused with its place and the way around it', async (t) => {
  const dir = t.testdir({ 'tree.yaml': TREE("{type: array, items: {$ref: '#/components/schemas/Node'}}"), 'flat.yaml': TREE('{type: array, items: {}}') });
  const file = join(dir, 'tree.yaml');
  await t.rejects(CompiledSpec.load(file), {
    message: `${file}#/components/schemas/Node/properties/kids/items: a circular $ref (a recursive schema) is not supported: write that part without the cycle (a fixed number of levels) or as {} (any value, not checked)`,
  });
  // the way around: the recursive part as {}
  const flat = await CompiledSpec.load(join(dir, 'flat.yaml'));
  const body = flat.check('POST', '/tree', '', { 'content-type': 'application/json' }, true).body;
  t.ok(body, 'loads; the body is validated');
  t.notOk(body?.({ v: 'x' }), 'the levels written are checked');
  t.ok(body?.({ v: 1, kids: [{ v: 'anything' }] }), 'the part written as {} is not');
});

t.test('a schema naming itself in ways the parser leaves in place is refused the same way', async (t) => {
  const spec = (version: string, schema: string) => `openapi: ${version}
info: {title: self, version: '1'}
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema: ${schema}
      responses: {'200': {description: ok}}
`;
  const dir = t.testdir({
    // {$ref: ''} is the schema's own root to the validator, which then recursed without end on every body
    'empty.yaml': spec('3.0.3', "{$ref: ''}"),
    'kids.yaml': spec('3.0.3', "{type: object, properties: {kids: {type: array, items: {$ref: ''}}}}"),
    'dynamic.yaml': spec('3.1.0', "{$dynamicAnchor: node, $dynamicRef: '#node'}"),
    // a property named $ref, or example, is a name: not refused
    'named.yaml': spec('3.0.3', "{type: object, properties: {example: {type: string}}, example: {$ref: ''}, x-meta: {$ref: ''}, x-example: {$ref: ''}}"),
  });
  const detail = 'a circular $ref (a recursive schema) is not supported: write that part without the cycle (a fixed number of levels) or as {} (any value, not checked)';
  const at = '/paths/~1x/post/requestBody/content/application~1json/schema';
  await t.rejects(CompiledSpec.load(join(dir, 'empty.yaml')), { message: `${join(dir, 'empty.yaml')}#${at}/$ref: ${detail}` });
  await t.rejects(CompiledSpec.load(join(dir, 'kids.yaml')), { message: `${join(dir, 'kids.yaml')}#${at}/properties/kids/items/$ref: ${detail}` });
  await t.rejects(CompiledSpec.load(join(dir, 'dynamic.yaml')), { message: `${join(dir, 'dynamic.yaml')}#${at}/$dynamicRef: ${detail}` });
  const named = await CompiledSpec.load(join(dir, 'named.yaml'));
  const body = named.check('POST', '/x', '', { 'content-type': 'application/json' }, true).body;
  t.ok(body?.({ example: 'x' }), 'an example and x- extensions holding {$ref: ""}, and a property named example, load; bodies are checked');
});

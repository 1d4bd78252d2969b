// A spec's patterns that V8's linear-time engine cannot run (a lookaround, a backreference, a
// unicode property in Node 20) are the ones the linear-time fallback does not protect: each is
// named, by file and JSON pointer, for the operator to review. `meshcar doctor` warns (a spec
// without any stays ok), and a sidecar starting on the spec logs each at warn. Patterns the
// linear engine runs, ^(a+)+$ included (it falls back there), are not named; a $ref's target
// used twice is named once; a pattern that is no regular expression is Ajv's to refuse; a
// `pattern` in data (example, default, enum, const, x-…) is never compiled and not named, one
// in a schema whose property is called `default` is. The first 20 are listed, with the count.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { backtrackingPatterns } from '../../src/schema/backtracking-patterns.js';
import { checkSpecs } from '../../src/doctor/openapi.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { startMeshCa, startSidecar } from '../helpers/mesh.js';

const ORDERS = resolve('config/orders.openapi.yaml');

const SPEC = {
  // 3.1: full JSON Schema (3.0's schema objects have no patternProperties)
  openapi: '3.1.0',
  info: { title: 'patterns', version: '1' },
  paths: {
    '/items/{id}': {
      get: {
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^(?!admin)[a-z]+$' } },
          { name: 'q', in: 'query', schema: { $ref: '#/components/schemas/Word' } },
          { name: 'r', in: 'query', schema: { $ref: '#/components/schemas/Word' } },
          { name: 's', in: 'query', schema: { type: 'string', pattern: '^(a+)+$' } },
        ],
        responses: { '200': { description: 'ok' } },
      },
    },
    '/items': {
      post: {
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  tag: { type: 'string', pattern: '^(\\w)\\1$' },
                  title: { type: 'string', pattern: '^\\p{L}+$' },
                  code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2,4}$' },
                  // a property named like a data keyword is still a schema
                  default: { type: 'string', pattern: '^(?!none)\\w+$' },
                  // data: never compiled
                  note: { type: 'object', example: { pattern: '(?=x)' }, default: { pattern: '(?=y)' }, enum: [{ pattern: '(?=z)' }], 'x-rule': { pattern: '(?=w)' } },
                },
                patternProperties: { '^x-(?<=x-)[a-z]+$': { type: 'string' }, '^y-[a-z]+$': { type: 'string' } },
              },
            },
          },
        },
        responses: { '201': { description: 'created' } },
      },
    },
  },
  components: {
    schemas: {
      Word: { type: 'string', pattern: '^(?=w)\\w+$' },
      // 20 more (26 in all): past the 20 listed, the rest are counted
      Many: { type: 'object', properties: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`m${i}`, { type: 'string', pattern: `^(?=m)m{${i + 1}}$` }])) },
    },
  },
};

const EXPECTED = [
  '/paths/~1items~1{id}/get/parameters/0/schema/pattern',
  '/paths/~1items~1{id}/get/parameters/1/schema/pattern',
  '/paths/~1items/post/requestBody/content/application~1json/schema/properties/tag/pattern',
  '/paths/~1items/post/requestBody/content/application~1json/schema/properties/title/pattern',
  '/paths/~1items/post/requestBody/content/application~1json/schema/properties/default/pattern',
  '/paths/~1items/post/requestBody/content/application~1json/schema/patternProperties/^x-(?<=x-)[a-z]+$',
];

t.test('the patterns only the backtracking engine runs are named, each once, with their pointers', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'patterns.json');
  await writeFile(file, JSON.stringify(SPEC));
  const spec = await CompiledSpec.load(file);
  t.same(spec.backtracking.listed.slice(0, EXPECTED.length).map((p) => p.pointer).sort(), [...EXPECTED].sort(), 'lookahead, shared lookahead (once), backreference, unicode property, property named default, lookbehind key; none from data');
  t.equal(spec.backtracking.total, EXPECTED.length + 20, 'all counted');
  t.equal(spec.backtracking.listed.length, 20, 'the first 20 listed');
  t.equal(spec.backtracking.listed.find((p) => p.pointer.endsWith('/tag/pattern'))?.pattern, '^(\\w)\\1$', 'with the pattern as written');
  t.same(backtrackingPatterns({ a: { pattern: '(' }, b: { pattern: '^[a-z]+$' }, c: { pattern: 7 } }), { listed: [], total: 0 }, 'not a regex, a linear one, not a string: none');
  t.same((await CompiledSpec.load(ORDERS)).backtracking, { listed: [], total: 0 }, 'the orders spec has none');
  const many = backtrackingPatterns({ properties: Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`p${i}`, { pattern: `^(?=a)a{${i + 1}}$` }])) });
  t.equal(many.total, 25, 'all counted');
  t.equal(many.listed.length, 20, 'the first 20 listed');

  // meshcar doctor: a warning with the places and the fix; the orders spec stays ok
  const config = (spec: string) => `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: /c.pem, key: /k.pem, bundle: /b.pem}\nadmin:\n  listen: 127.0.0.1:0\ninbound:\n  listen: 127.0.0.1:0\n  app: http://127.0.0.1:8080\n  openapi:\n    spec: ${spec}\n    mode: enforce\n`;
  await writeFile(join(dir, 'warned.yaml'), config(file));
  await writeFile(join(dir, 'clean.yaml'), config(ORDERS));
  const [warned, clean] = await Promise.all([checkSpecs(await loadSidecarConfig(join(dir, 'warned.yaml'))), checkSpecs(await loadSidecarConfig(join(dir, 'clean.yaml')))]);
  t.match(warned, [{ name: 'openapi inbound.openapi', status: 'warn', message: /2 operations, enforce mode; 26 patterns only the backtracking regex engine can run .*#\/paths\/~1items~1\{id\}\/get\/parameters\/0\/schema\/pattern \/\^\(\?!admin\)\[a-z\]\+\$\/.*, and 21 more$/, fix: /rewrite each without lookarounds or backreferences/ }]);
  t.match(clean, [{ name: 'openapi inbound.openapi', status: 'ok' }]);
});

t.test('a sidecar starting on the spec logs each at warn, with key, file and pointer', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'patterns.json');
  await writeFile(file, JSON.stringify(SPEC));
  const ca = await startMeshCa(join(dir, 'ca'));
  t.teardown(() => ca.stop());
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9', openapi: `{spec: ${file}, mode: shadow}` } });
  t.teardown(() => orders.stop());
  for (const pointer of EXPECTED) {
    const line = await orders.process.waitFor((l) => l.pointer === pointer, 5_000);
    t.match(line, { level: 40, setting: 'inbound.openapi', spec: file, msg: /the pattern can only run on the backtracking regex engine \(a lookaround, a backreference, a unicode property, or a counted repetition past about \{1,16\}/ }, `logged: ${pointer}`);
  }
  const rest = await orders.process.waitFor((l) => l.total !== undefined && l.setting === 'inbound.openapi', 5_000);
  t.match(rest, { level: 40, total: 26, msg: /6 more patterns of this kind \(26 in all; meshcar doctor names the first\)/ }, 'past the first 20, one line with the count');
  t.equal(orders.process.lines.filter((l) => typeof l.pointer === 'string').length, 20, 'no more than 20 named');
});

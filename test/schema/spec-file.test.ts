// Spec files cost bounded time and memory: a YAML alias bomb (in the spec or in a file one of
// its $refs names), a spec larger than the size cap and a repeated key are refused with an
// error naming the file, fast; $refs to other files and YAML merge keys keep working.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CompiledSpec } from '../../src/schema/spec.js';
import { SpecError } from '../../src/schema/spec-error.js';
import { MAX_SPEC_BYTES } from '../../src/schema/spec-file.js';
import { makePki } from '../helpers/pki.js';
import { ALIAS_BOMB } from '../helpers/specs.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const REFERRING = (target: string) => `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /items:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: './${target}#/Item'}
      responses: {"200": {description: ok}}
`;

async function refusal(t: TapTest, file: string): Promise<SpecError> {
  const err = await CompiledSpec.load(file).then(() => undefined, (e: unknown) => e);
  t.type(err, SpecError, `${file} is refused`);
  return err as SpecError;
}

t.test('meshcar check refuses a 13-line alias bomb in a spec within 10 s (parsing it takes ms), naming the spec', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'bomb.openapi.yaml': ALIAS_BOMB });
  t.equal(ALIAS_BOMB.trimEnd().split('\n').length, 13);
  const spec = join(dir, 'bomb.openapi.yaml');
  await writeFile(
    join(dir, 'meshcar.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: https://127.0.0.1:8443, bundle: ${join(dir, 'bundle.pem')}}\n  dir: ${join(dir, 'id')}\ninbound:\n  listen: 127.0.0.1:0\n  app: http://127.0.0.1:8080\n  openapi: {spec: ${spec}, mode: enforce}\n`,
  );
  const started = Date.now();
  // killed after 20 s: without the limit the check expands 10^9 nodes and never answers
  const run = await new Promise<{ code: number | string | null; stderr: string; stdout: string }>((done) =>
    execFile(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, 'check', '--config', join(dir, 'meshcar.yaml')], { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number | string }).code ?? (err as { signal?: string }).signal ?? null) : 0, stdout, stderr }),
    ),
  );
  const elapsed = Date.now() - started;
  t.equal(run.code, 1, `check fails (${run.stdout}${run.stderr})`);
  // a generous bound (a loaded CI box starts node slowly): unbounded, the expansion never ends
  t.ok(elapsed < 10_000, `and fast: ${elapsed} ms`);
  t.match(run.stdout + run.stderr, `inbound.openapi.spec: ${spec}: its YAML aliases (*name) expand to far more than the file holds`);
});

t.test('alias bombs, oversized files and repeated keys are refused, in the spec and in files its $refs name', async (t) => {
  const dir = t.testdir({
    'bomb.yaml': ALIAS_BOMB,
    'refers-to-bomb.yaml': REFERRING('bomb-schemas.yaml'),
    'bomb-schemas.yaml': `${ALIAS_BOMB}Item: {type: object}\n`,
    // a large anchored list copied by 1000 aliases: the alias count only weighs nested aliases, far over the expansion budget
    'wide.yaml': `openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths: {}\nx-big: &big [${'x,'.repeat(12_000)}x]\nx-copies: [${Array(1000).fill('*big').join(', ')}]\n`,
    'repeated.yaml': 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths: {}\ninfo: {title: u, version: "2"}\n',
    // the same bomb with $refs: ten per level, eight levels (10^8 places once resolved)
    'ref-bomb.yaml':
      'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths: {}\ncomponents:\n  schemas:\n    a0: {type: string}\n' +
      Array.from({ length: 8 }, (_, i) => `    a${i + 1}: {type: object, properties: {${Array.from({ length: 10 }, (_, k) => `p${k}: {$ref: "#/components/schemas/a${i}"}`).join(', ')}}}\n`).join(''),
    // an alias inside its own anchor: js-yaml makes a cycle, which a walk would follow for ever
    'cycle.yaml': 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\npaths: {}\nx-a: &a [x, *a]\n',
    'refers-to-large.yaml': REFERRING('large.json'),
  });
  const large = (name: string) => writeFile(join(dir, name), `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, "Item": {"description": "${'y'.repeat(MAX_SPEC_BYTES)}"}}`);
  await Promise.all([large('large.json'), large('large.yaml')]);

  const started = Date.now();
  t.match((await refusal(t, join(dir, 'bomb.yaml'))).message, `${join(dir, 'bomb.yaml')}: its YAML aliases (*name) expand to far more than the file holds`);
  t.match((await refusal(t, join(dir, 'refers-to-bomb.yaml'))).message, `${join(dir, 'bomb-schemas.yaml')}: its YAML aliases`, 'a file a $ref names: that file is named');
  t.match((await refusal(t, join(dir, 'wide.yaml'))).message, 'its YAML aliases (*name) expand to far more', 'few aliases of a large node: measured by what they expand to');
  t.match((await refusal(t, join(dir, 'cycle.yaml'))).message, 'its YAML aliases (*name) expand to far more', 'an alias inside its own anchor (a cycle)');
  t.match((await refusal(t, join(dir, 'ref-bomb.yaml'))).message, `${join(dir, 'ref-bomb.yaml')}: its $refs expand to far more than its files hold`, 'a $ref bomb: measured once resolved');
  // generous for a loaded machine (15.9 s seen with the cores shared four ways): unbounded, the
  // expansions never end
  t.ok(Date.now() - started < 30_000, `all in bounded time (${Date.now() - started} ms)`);

  for (const name of ['large.json', 'large.yaml']) {
    t.match((await refusal(t, join(dir, name))).message, new RegExp(`^${join(dir, name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the spec file is \\d+ bytes; at most ${MAX_SPEC_BYTES} \\(5 MiB\\)`), `${name}: over the size cap`);
  }
  t.match((await refusal(t, join(dir, 'refers-to-large.yaml'))).message, `${join(dir, 'large.json')}: the spec file is`, 'a file a $ref names is capped too');
  // a pipe has no size to check first: the read itself stops at the cap
  await promisify(execFile)('mkfifo', [join(dir, 'pipe.yaml')]);
  const writer = writeFile(join(dir, 'pipe.yaml'), Buffer.alloc(MAX_SPEC_BYTES + 2 * 1024 * 1024, 'a')).catch((err: NodeJS.ErrnoException) => err.code);
  t.match((await refusal(t, join(dir, 'pipe.yaml'))).message, `${join(dir, 'pipe.yaml')}: the spec file holds more than ${MAX_SPEC_BYTES} bytes`, 'a pipe: refused once the cap is passed');
  t.equal(await writer, 'EPIPE', 'before the writer was done');
  t.match((await refusal(t, join(dir, 'repeated.yaml'))).message, 'the key "info" at line 4, column 1 is repeated');
});

t.test('$refs to other files, in YAML and JSON, and YAML anchors and merge keys still work', async (t) => {
  const dir = t.testdir({
    'api.yaml': REFERRING('schemas.yaml'),
    'schemas.yaml': 'Item: {type: object, required: [id], properties: {id: {type: integer}}}\n',
    'api-json.yaml': REFERRING('schemas.json'),
    'schemas.json': JSON.stringify({ Item: { type: 'object', required: ['name'] } }),
    'merge.yaml':
      'openapi: 3.0.3\ninfo: {title: t, version: "1"}\nx-ok: &ok {description: ok}\npaths:\n  /a:\n    get:\n      responses:\n        "200": {<<: *ok, headers: {}}\n        "201": *ok\n',
  });
  const spec = await CompiledSpec.load(join(dir, 'api.yaml'));
  const body = (s: CompiledSpec) => s.check('POST', '/items', '', { 'content-type': 'application/json' }, true).body;
  t.ok(body(spec), 'the referenced schema is there');
  t.same(body(spec)?.({ id: 'x' }), false, 'and enforced');
  t.same(body(await CompiledSpec.load(join(dir, 'api-json.yaml')))?.({}), false, 'a JSON file named by a $ref');
  const merged = await CompiledSpec.load(join(dir, 'merge.yaml'));
  t.same((merged.document.paths?.['/a']?.get as { responses: unknown }).responses, { 200: { description: 'ok', headers: {} }, 201: { description: 'ok' } });
});

t.test('a JSON spec nested deeper than a YAML one may be is refused by name, not by the stack it overflowed', async (t) => {
  const head = '{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{},"x-deep":';
  const dir = t.testdir({
    'deep.json': `${head}${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    'deep-101.json': `${head}${'['.repeat(100)}${']'.repeat(100)}}`,
    'fine.json': `${head}${'['.repeat(90)}${']'.repeat(90)}}`,
  });
  for (const name of ['deep.json', 'deep-101.json']) {
    t.equal((await refusal(t, join(dir, name))).message, `${join(dir, name)}: its JSON nests arrays and objects more than 100 deep; a spec needs a few tens`, name);
  }
  await t.resolves(CompiledSpec.load(join(dir, 'fine.json')), 'brackets 91 deep with the spec object around them: fine');
});

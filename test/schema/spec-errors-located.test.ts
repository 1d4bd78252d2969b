// A broken spec is said where it breaks and in words a reader acts on (a bad-input review): a
// $ref to a pointer another file lacks named the spec's node with the spec's own path glued
// into the pointer (`spec.yaml#/tmp/.../spec.yaml#/paths/...`) and never named that file; a
// broken $ref inside a referenced file was put in the spec; a fragment without `/` said only
// `Pointers must begin with "#/"`; `path:` for `paths:` said "is not a valid Openapi API
// definition"; a link loop said Node's ELOOP text. Specs loaded as the sidecar loads them.

import t from 'tap';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { SpecError } from '../../src/schema/spec-error.js';

const head = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n";
const postWith = (ref: string) => `${head}paths:\n  /orders:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '${ref}'}\n      responses: {'200': {description: ok}}\n`;
const SCHEMA_AT = '/paths/~1orders/post/requestBody/content/application~1json/schema';

t.test('each broken spec is said where, in words', async (t) => {
  const dir = t.testdir({
    'cross.yaml': postWith('./schemas.yaml#/NewOrdr'),
    'nested.yaml': postWith('./schemas.yaml#/NewOrder'),
    'schemas.yaml': "NewOrder:\n  type: object\n  properties:\n    x: {$ref: '#/Missing'}\n",
    'no-slash.yaml': postWith('./schemas.yaml#NewOrder'),
    'typo.yaml': `${head}path:\n  /orders:\n    get:\n      responses: {'200': {description: ok}}\n`,
    'no-version.yaml': "opnapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n",
    'loop-ref.yaml': postWith('./loop1#/x'),
    'own-no-slash.yaml': postWith('#Foo'),
    'pct.yaml': postWith('./schemas.yaml#My%20Schema'),
  });
  await symlink(join(dir, 'loop2'), join(dir, 'loop1'));
  await symlink(join(dir, 'loop1'), join(dir, 'loop2'));
  const failure = async (file: string): Promise<SpecError> => {
    const err = await CompiledSpec.load(join(dir, file)).then(() => undefined, (e: unknown) => e);
    t.type(err, SpecError, `${file} is refused`);
    return err as SpecError;
  };

  const cross = await failure('cross.yaml');
  t.match(cross, { file: join(dir, 'cross.yaml'), pointer: SCHEMA_AT }, 'a pointer another file lacks: the node holding the $ref, in the spec');
  t.equal(cross.detail, `Missing $ref pointer "#/NewOrdr" in ${join(dir, 'schemas.yaml')}: that file has no "NewOrdr" at its top level`, 'naming the file it looked in');

  const nested = await failure('nested.yaml');
  t.match(nested, { file: join(dir, 'schemas.yaml'), pointer: '/NewOrder/properties/x' }, 'a broken $ref inside a referenced file: that file, where in it');
  t.match(nested.detail, /^Missing \$ref pointer "#\/Missing": this file has no "Missing" at its top level \(a file .*nested\.yaml names\)$/);

  const noSlash = await failure('no-slash.yaml');
  t.match(noSlash, { pointer: SCHEMA_AT, detail: 'its $ref "./schemas.yaml#NewOrder" has a fragment that is no JSON pointer (#NewOrder): a pointer starts with #/, as in #/NewOrder' }, 'a fragment without /: where, and the fix');

  t.match(await failure('typo.yaml'), { pointer: '', detail: 'has no "paths" map, which holds the operations to check (did you mean paths for "path"?)' }, '`path:` for `paths:`');
  t.match(await failure('no-version.yaml'), { detail: /^has no "openapi" key naming its OpenAPI version \(3\.0\.x or 3\.1\.x\) \(did you mean openapi for "opnapi"\?\)$/ }, 'a misspelt openapi key');

  const loopSpec = await CompiledSpec.load(join(dir, 'loop1')).then(() => undefined, (e: unknown) => e as SpecError);
  t.match(loopSpec, { detail: 'cannot be read: too many symbolic links; correct the path' }, 'the spec a link loop: in words');
  const loopRef = await failure('loop-ref.yaml');
  t.match(loopRef.detail, /loop1: too many symbolic links; correct the path$/, 'a $ref to a link loop: in words');
  // in the spec's own file it read as "a circular $ref"; percent-encoded, it was not found (a review)
  t.match(await failure('own-no-slash.yaml'), { pointer: SCHEMA_AT, detail: 'its $ref "#Foo" has a fragment that is no JSON pointer (#Foo): a pointer starts with #/, as in #/Foo' }, 'a fragment without / in the same file');
  t.match(await failure('pct.yaml'), { pointer: SCHEMA_AT, detail: /^its \$ref "\.\/schemas\.yaml#My%20Schema" has a fragment that is no JSON pointer/ }, 'a percent-encoded fragment found where it is');
  for (const err of [cross, nested, noSlash, loopSpec, loopRef]) t.notMatch(String(err?.message), /ELOOP|Pointers must begin|#\/tmp\//, `no parser or errno text: ${String(err?.message).slice(0, 80)}`);
});

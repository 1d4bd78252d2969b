// With identity.files (certificates written and renewed by something else), the keys only an
// SVID from the meshcar CA uses (dir, ttl, renewal) do nothing: the file stays valid, and
// `meshcar check`, the sidecar's start and POST /reload say which key does nothing, one line each.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { check, postReload, warningsIn, writeOrdersConfig } from '../helpers/config-warning-runs.js';

const SIDES = ['outbound:', '  listen: "127.0.0.1:0"', '  upstreams:', '    payments: {endpoints: ["127.0.0.1:1"], identity: "spiffe://mesh.local/svc/payments"}'];

/** `file`'s identity section given `extra` keys beside files (YAML flow-map entries). */
async function withIdentityKeys(file: string, extra: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.replace(/^identity: \{(files: \{[^}]*\})\}$/m, (_all, files: string) => `identity: {${files}${extra}}`));
}

const line = (file: string, key: string, what: string) =>
  `${file}: identity.${key} does nothing with identity.files: it sets ${what}; the files are renewed by whatever writes them (meshcar reloads them when they change): remove it, or use identity.ca`;

t.test('check passes the file and names each identity key that identity.files leaves unused', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeOrdersConfig(t.testdir(), pki, SIDES);
  await withIdentityKeys(file, `, dir: ${JSON.stringify(t.testdirName + '/id')}, ttl: 1h, renewal: {from: 0.4, to: 0.6}`);
  const result = await check(file);
  t.equal(result.status, 0, 'a warning does not fail the check');
  t.match(result.stdout, `${file}: valid sidecar configuration`);
  t.same(result.stderr, [
    `meshcar: warning: ${line(file, 'dir', 'where an SVID from the meshcar CA is kept')}`,
    `meshcar: warning: ${line(file, 'ttl', 'the lifetime asked of the meshcar CA')}`,
    `meshcar: warning: ${line(file, 'renewal', 'when an SVID from the meshcar CA is renewed')}`,
  ]);
});

t.test('files alone: no warning', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeOrdersConfig(t.testdir(), pki, SIDES);
  const result = await check(file);
  t.equal(result.status, 0);
  t.same(result.stderr, []);
});

t.test('a running sidecar logs it at start and at each reload', async (t) => {
  const pki = await makePki('mesh.local');
  const file = await writeOrdersConfig(t.testdir(), pki, SIDES);
  await withIdentityKeys(file, ', ttl: 1h');
  const proc = startMeshcar(['run', '--config', file]);
  t.teardown(() => proc.stop());
  await proc.waitFor((l) => l.msg === 'sidecar ready', 30_000);
  t.same(warningsIn(proc, 0), [line(file, 'ttl', 'the lifetime asked of the meshcar CA')], 'at start');
  const admin = proc.lines.find((l) => l.msg === 'admin listening')?.address as { port: number };
  const before = proc.lines.length;
  t.equal(await postReload(admin.port), 200);
  await proc.waitFor((l) => proc.lines.indexOf(l) >= before && l.msg === 'config reloaded');
  t.same(warningsIn(proc, before), [line(file, 'ttl', 'the lifetime asked of the meshcar CA')], 'and at the reload');
});

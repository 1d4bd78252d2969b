// The make targets a new user runs for their own services: TTL is honoured by make token and
// make cert, make cert refuses to overwrite a folder without FORCE=1, and make ca says FORCE=1
// (make cannot pass --force). `-o build` takes the build as done: the test runs dist/ as built.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readTokenClaims } from '../src/identity/token-claims.js';

function make(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('make', ['--no-print-directory', '-o', 'build', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

t.test('make ca, cert and token for your own services', async (t) => {
  const dir = t.testdir();
  const vars = [`CA_DIR=${join(dir, 'ca')}`, `CERTS=${dir}`];
  t.equal((await make(['ca', ...vars])).code, 0);
  const again = await make(['ca', ...vars]);
  t.not(again.code, 0, 'an existing CA is kept');
  t.match(again.stderr, /already holds a CA; FORCE=1 make ca replaces it/);
  t.notMatch(again.stderr, /--force/, 'no advice make cannot follow');
  const rootBefore = await readFile(join(dir, 'ca', 'root.crt'), 'utf8');
  t.equal((await make(['ca', 'FORCE=1', ...vars])).code, 0);
  t.not(await readFile(join(dir, 'ca', 'root.crt'), 'utf8'), rootBefore, 'FORCE=1 replaces it');

  const token = await make(['token', 'SERVICE=orders', 'TTL=8h', ...vars]);
  t.equal(token.code, 0, token.stderr);
  const claims = readTokenClaims(await readFile(join(dir, 'orders.token'), 'utf8'));
  t.ok(typeof claims === 'object' && Math.abs(claims.expMs - Date.now() - 8 * 3_600_000) < 60_000, 'TTL=8h gives an 8 h token');
  await make(['token', 'SERVICE=billing', ...vars]);
  const plain = readTokenClaims(await readFile(join(dir, 'billing.token'), 'utf8'));
  t.ok(typeof plain === 'object' && Math.abs(plain.expMs - Date.now() - 3_600_000) < 60_000, 'without TTL: 1 h');

  t.equal((await make(['cert', 'SERVICE=orders', 'TTL=2h', ...vars])).code, 0);
  const cert = await readFile(join(dir, 'orders', 'svid.crt'), 'utf8');
  const refused = await make(['cert', 'SERVICE=orders', ...vars]);
  t.not(refused.code, 0);
  t.match(refused.stderr, /orders already exists .*FORCE=1 make cert SERVICE=orders/);
  t.equal(await readFile(join(dir, 'orders', 'svid.crt'), 'utf8'), cert, 'the folder is left alone');
  t.equal((await make(['cert', 'SERVICE=orders', 'FORCE=1', ...vars])).code, 0);
  t.not(await readFile(join(dir, 'orders', 'svid.crt'), 'utf8'), cert, 'FORCE=1 replaces it');
  t.ok((await stat(join(dir, 'orders', 'svid.key'))).isFile());
});

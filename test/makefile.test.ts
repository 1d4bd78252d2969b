// The make targets a new user runs for their own services: TTL is honoured by make token and
// make cert, make cert refuses to overwrite a folder without FORCE=1, make token makes a missing
// CERTS folder as make cert does, make ca says FORCE=1 (make cannot pass --force), and make
// clean keeps the CA unless FORCE=1. `-o build` takes the build as done: the test runs dist/ as
// built. make help lists every .PHONY target with its text.

import t from 'tap';
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readTokenClaims } from '../src/identity/token-claims.js';

const MAKEFILE = new URL('../Makefile', import.meta.url).pathname;

/** `cwd`: run the repository's Makefile in another folder (make clean there removes that folder's dist/, not ours). */
function make(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('make', ['--no-print-directory', '-f', MAKEFILE, '-o', 'build', ...args], { ...(cwd ? { cwd } : {}) }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
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
  // CERTS naming a folder that does not exist yet: made (0700, as make cert makes it), not refused
  const fresh = join(dir, 'fresh', 'certs');
  const first = await make(['token', 'SERVICE=orders', `CA_DIR=${join(dir, 'ca')}`, `CERTS=${fresh}`]);
  t.equal(first.code, 0, first.stderr);
  t.equal((await stat(fresh)).mode & 0o777, 0o700, 'the new CERTS folder is 0700');
  t.equal((await stat(join(fresh, 'orders.token'))).mode & 0o777, 0o600);
  // before make ca (or with a mistyped CA_DIR): make ca is the fix, and no CERTS folder is made
  const early = join(dir, 'early');
  const noCa = await make(['token', 'SERVICE=orders', `CA_DIR=${join(early, 'ca')}`, `CERTS=${join(early, 'certs')}`]);
  t.equal(noCa.code, 2, 'make: the recipe failed');
  t.match(noCa.stderr, new RegExp(`^make token: there is no CA in ${join(early, 'ca')} yet: make ca makes one \\(CA_DIR=DIR names another\\)$`, 'm'));
  t.notMatch(noCa.stderr, /meshcar ca init/, 'the make target, not the command under it');
  await t.rejects(stat(early), { code: 'ENOENT' }, 'nothing made');

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

t.test('make clean keeps certs/ (the CA) as make ca does; FORCE=1 removes it but certs/README.md', async (t) => {
  const dir = t.testdir({ dist: { 'cli.js': '' }, '.tap': { x: '' }, certs: { 'README.md': 'keep', ca: { 'root.key': 'key' }, 'orders.token': 't' } });
  const exists = (path: string) => access(join(dir, path)).then(() => true, () => false);
  const clean = await make(['clean'], dir);
  t.equal(clean.code, 0, clean.stderr);
  t.same([await exists('dist'), await exists('.tap')], [false, false], 'build output removed');
  t.same([await exists('certs/ca/root.key'), await exists('certs/orders.token')], [true, true], 'the CA and tokens are kept');
  t.match(clean.stderr, /certs\/ is kept .*FORCE=1 make clean removes it too/, 'and it says how to remove them');
  const forced = await make(['clean', 'FORCE=1'], dir);
  t.equal(forced.code, 0, forced.stderr);
  t.same([await exists('certs/ca'), await exists('certs/orders.token'), await exists('certs/README.md')], [false, false, true], 'FORCE=1: removed, but certs/README.md');
  await mkdir(join(dir, 'dist'));
  await writeFile(join(dir, 'dist', 'cli.js'), '');
  t.notMatch((await make(['clean'], dir)).stderr, /kept/, 'nothing to keep: nothing said');
});

t.test('make help lists every target a person can run, each with what it does', async (t) => {
  const help = await make(['help']);
  t.equal(help.code, 0, help.stderr);
  const makefile = await readFile(MAKEFILE, 'utf8');
  // every .PHONY target but the internal ones is a command a person runs
  const targets = [...makefile.matchAll(/^\.PHONY: (.+)$/gm)].flatMap((m) => (m[1] as string).split(/\s+/));
  t.ok(targets.length > 10, `targets read: ${targets.join(' ')}`);
  for (const target of targets) t.match(help.stdout, new RegExp(`^${target}( [A-Z]+=\\S+)*( \\[[^\\]]+\\])*: \\S`, 'm'), `${target} is listed with a description`);
  t.notMatch(help.stdout, /^## /m, 'the ## markers are not shown');
  t.notMatch(help.stdout, /\$\(/, 'no make variable is shown as $(NAME)');
  t.match(help.stdout, /^ca: a new CA for mesh\.local in certs\/ca /m, 'make ca names the trust domain and folder it uses');
  t.match((await make(['help', 'CA_DIR=elsewhere/ca'])).stdout, /^ca: a new CA for mesh\.local in elsewhere\/ca /m, 'as set on the command line');
});

t.test('make build compiles only when a source, the compiler settings or the packages changed', async (t) => {
  // a project of the Makefile's shape, dry-run (-n: the commands are printed, not run)
  const dir = t.testdir({ src: { 'a.ts': '', http: { 'b.ts': '' } }, 'tsconfig.json': '{}', 'package.json': '{}', 'package-lock.json': '{}', node_modules: { '.package-lock.json': '' }, dist: { '.built': '' } });
  const at = async (path: string, secondsAgo: number) => {
    const when = new Date(Date.now() - secondsAgo * 1000);
    await utimes(join(dir, path), when, when);
  };
  for (const path of ['src/a.ts', 'src/http/b.ts', 'src/http', 'src', 'tsconfig.json', 'package.json', 'package-lock.json']) await at(path, 300);
  await at('node_modules/.package-lock.json', 200);
  await at('dist/.built', 100);
  const compiles = async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('make', ['--no-print-directory', '-f', MAKEFILE, '-n', 'build'], { cwd: dir }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
    );
    t.equal(run.code, 0, run.stderr);
    return /tsc -p tsconfig\.json/.test(run.stdout);
  };
  t.equal(await compiles(), false, 'nothing newer than the last build: no tsc');
  await at('src/http/b.ts', 10);
  t.equal(await compiles(), true, 'a source edited: tsc');
  await at('src/http/b.ts', 300);
  t.equal(await compiles(), false);
  await at('src/http', 10);
  t.equal(await compiles(), true, 'a file added to or removed from a source folder: tsc');
  await at('src/http', 300);
  await at('tsconfig.json', 10);
  t.equal(await compiles(), true, 'the compiler settings changed: tsc');
  await at('tsconfig.json', 300);
  await at('node_modules/.package-lock.json', 10);
  t.equal(await compiles(), true, 'the packages installed again: tsc');
});

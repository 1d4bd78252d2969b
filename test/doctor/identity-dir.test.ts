// `meshcar doctor` on identity.dir itself, through the real CLI against our CA: a folder its
// group can write holds a valid SVID, which the sidecar will not use (DiskStore.load refuses a
// set others could have planted) and so needs its join token; with that token expired, doctor
// must not say ✓ identity and "token not needed" while `meshcar run` fails to start. And an
// identity.dir under a plain file, which the sidecar can never store an SVID in. And one holding
// another service's SVID: the ✗ says what to do about it. And a single-use token a first start
// spent, needed again after identity.dir was lost: doctor cannot see that (the CA publishes no
// spent tokens), and its line says so instead of a bare ✓. And an SVID that expired while the
// sidecar was stopped, with a valid token: the sidecar starts (it asks with the token), so it is
// a `!`, exit 0, where it was a ✗ telling to get a fresh token the config already had.

import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileAsync } from '../helpers/ca.js';
import { meshFixture } from '../helpers/mesh-fixture.js';
import type { CheckResult } from '../../src/doctor/index.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const mesh = meshFixture(t);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The CLI to its end (bounded: killed after 20 s). */
const cli = (args: string[]): Promise<Run> =>
  new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr })),
  );

/** An orders config: identity from the CA with `dir` and `token`, the fixture's app, admin on port 0 (doctor skips it). */
async function config(name: string, dir: string, token: string): Promise<string> {
  const file = join(mesh.ca.dir, `${name}.yaml`);
  const yaml = ['service: orders', 'trustDomain: mesh.local', 'identity:', '  ca:', `    url: ${mesh.ca.url}`, `    bundle: ${mesh.ca.bundlePath}`, `    token: ${token}`, `  dir: ${dir}`, '  ttl: 1h', 'inbound:', '  listen: 127.0.0.1:0', `  app: http://127.0.0.1:${mesh.app.port}`, 'admin:', '  listen: 127.0.0.1:0', 'log:', '  level: info'];
  await writeFile(file, `${yaml.join('\n')}\n`);
  return file;
}

/** A join token for orders that has expired (made with a 1 s lifetime, then waited out). */
async function expiredToken(): Promise<string> {
  const file = join(mesh.ca.dir, 'orders-expired.token');
  await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', mesh.ca.caDir, '--service', 'orders', '--ttl', '1s', '--out', file]);
  // its exp is whole seconds: 2.5 s later it is past, whatever the rounding
  const until = Date.now() + 2500;
  for (let i = 0; i < 100 && Date.now() < until; i++) await sleep(Math.max(1, Math.min(100, until - Date.now())));
  return file;
}

t.test('a group-writable identity.dir with a valid SVID, and an expired token: the folder and the token are ✗', async (t) => {
  const dir = join(mesh.ca.dir, 'id-group-writable');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', mesh.ca.caDir, '--service', 'orders', '--out', dir]);
  await chmod(dir, 0o775);
  const file = await config('group-writable', dir, await expiredToken());

  const text = await cli(['doctor', '--config', file]);
  const lines = text.stdout.split('\n');
  t.equal(text.code, 1, `exit 1:\n${text.stdout}`);
  // not empty: the sidecar does not take it over (chmod 700 would pass what someone else put there as its own)
  t.match(lines.find((l) => l.includes(' identity: ')), new RegExp(`^✗ identity: identity\\.dir ${dir} is writable by its group \\(mode 0775\\) and is not empty: the sidecar neither uses what is stored there nor saves into it .*; it holds spiffe://mesh\\.local/svc/orders, .* — fix: remove what is in ${dir} \\(the sidecar then gets a new SVID with the join token and makes the folder 0700\\)$`));
  t.match(lines.find((l) => l.includes(' join token: ')), /^✗ join token: .*orders-expired\.token: the token expired at \S+ — fix: write a new token with meshcar ca token/);
  t.equal(lines.filter((l) => l.startsWith('✗')).length, 2, 'two ✗: the folder and the token');

  const json = await cli(['doctor', '--config', file, '--json']);
  t.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; checks: CheckResult[] };
  t.equal(report.ok, false);
  t.match(report.checks.find((c) => c.name === 'identity'), { status: 'fail', fix: `remove what is in ${dir} (the sidecar then gets a new SVID with the join token and makes the folder 0700)` });
  t.match(report.checks.find((c) => c.name === 'join token'), { status: 'fail' });

  // what doctor foretells: the sidecar passes the stored SVID over and the CA refuses the token
  const run = await cli(['run', '--config', file]);
  t.equal(run.code, 1, 'meshcar run fails to start');
  t.match(run.stdout + run.stderr, /not using a stored SVID: .* writable by its group/);
  t.match(run.stdout + run.stderr, /token_expired/);
});

t.test('an identity.dir under a folder others may write: ✗, since the sidecar neither uses nor saves an SVID there', async (t) => {
  const open = join(mesh.ca.dir, 'open-parent');
  await mkdir(open, { recursive: true });
  const dir = join(open, 'identity');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', mesh.ca.caDir, '--service', 'orders', '--out', dir]);
  await chmod(open, 0o777);
  const file = await config('open-parent', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.equal(text.code, 1, text.stdout);
  t.match(text.stdout.split('\n').find((l) => l.includes(' identity: ')), new RegExp(`^✗ identity: identity\\.dir ${dir}: ${open}, a folder above it, is writable by group and others \\(mode 0777, no sticky bit\\), so another user could swap it for a folder of theirs: the sidecar neither uses nor saves an SVID there, .* — fix: keep identity\\.dir under folders only its user or root may write`));
  t.match(text.stdout, /^✓ join token: .*orders\.token: for spiffe:\/\/mesh\.local\/svc\/orders, valid until \S+ \(its signing key/m, 'the join token is judged as needed');
  await chmod(open, 0o755);
  const fixed = await cli(['doctor', '--config', file]);
  t.match(fixed.stdout, /^✓ identity: /m, 'the folder above made 0755: ✓');

  const root = process.getuid?.() === 0;
  t.test("a file in it another user owns: ✗, as the sidecar passes the set over and will not save there", { skip: root ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
    await chown(join(dir, 'svid.crt'), 65534, 65534);
    const text = await cli(['doctor', '--config', file]);
    t.match(text.stdout, new RegExp(`^✗ identity: identity\\.dir ${dir} holds svid\\.crt \\(uid 65534\\), owned by another user than the one running meshcar \\(uid 0\\) or root: the sidecar neither uses what is stored there nor saves into it`, 'm'));
  });
});

t.test("a missing identity.dir in another user's folder is judged as that user, who would run the sidecar", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
  const home = join(mesh.ca.dir, 'home-65534');
  await mkdir(home, { recursive: true });
  await chmod(home, 0o750);
  await chown(home, 65534, 65534);
  const dir = join(home, 'identity');
  const file = await config('missing-in-home', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.notMatch(text.stdout, /a folder above it/, `not judged as doctor's own user (root):\n${text.stdout}`);
  t.match(text.stdout, /^- identity: no SVID in .*home-65534\/identity yet/m, 'nothing stored yet: the join token decides');
  t.match(text.stdout, /yet: .* \(judged for uid 65534, who owns the folder it would be made in, as the user the sidecar runs as; a sidecar run as another user, root too, neither uses nor saves an SVID there\)$/m, 'and for whom it was judged');
});

// another user made a private folder at identity.dir: judged as theirs, doctor said "no SVID
// yet: the sidecar will ask the CA", while a sidecar run as root refused it (a review)
t.test("an identity.dir another user owns: the line says it was judged for that user", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
  const dir = join(mesh.ca.dir, 'id-made-by-65534');
  await mkdir(dir, { mode: 0o700 });
  await chown(dir, 65534, 65534);
  const file = await config('made-by-65534', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.match(text.stdout, new RegExp(`^- identity: no SVID in ${dir} yet: .* \\(judged for uid 65534, who owns it, as the user the sidecar runs as; a sidecar run as another user, root too, neither uses nor saves an SVID there\\)$`, 'm'), text.stdout);
  const own = join(mesh.ca.dir, 'id-made-by-root');
  await mkdir(own, { mode: 0o700 });
  const ownText = await cli(['doctor', '--config', await config('made-by-root', own, await mesh.ca.tokenFile('orders'))]);
  t.notMatch(ownText.stdout, /judged for uid/, 'a folder of doctor\'s own user: nothing added');
  // judged for its owner, who may not write it: root's own access() passed it (a re-review)
  await chmod(dir, 0o500);
  const readOnly = await cli(['doctor', '--config', file]);
  t.match(readOnly.stdout, new RegExp(`^✗ identity: identity\\.dir ${dir} is not writable \\(its owner, uid 65534, may not write it \\(mode 0500\\)\\)`, 'm'), readOnly.stdout);
});

// root's group may write a folder above identity.dir only for a sidecar running in group 0 as
// another user (OpenShift): doctor as root, judging for uid 65534, took its own group for the
// sidecar's and passed a root:0 0775 folder the sidecar (65534:65534) refused (a review)
t.test("doctor as root judging for another user does not lend it root's group", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
  const group = join(mesh.ca.dir, 'root-group-0775');
  await mkdir(group, { recursive: true });
  await chmod(group, 0o775);
  await chown(group, 0, 0);
  const dir = join(group, 'identity');
  await mkdir(dir);
  await chown(dir, 65534, 65534);
  await chmod(dir, 0o700);
  const file = await config('root-group', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.match(text.stdout, new RegExp(`^✗ identity: identity\\.dir ${dir}: ${group}, a folder above it, is writable by its group \\(mode 0775, no sticky bit\\)`, 'm'), `as the sidecar judges it:\n${text.stdout}`);
});

// a private folder holding another user's entry: the sidecar passes what is stored over and
// refuses to save there; doctor gave ✓ (a re-review)
t.test("a private identity.dir holding another user's entry: ✗", { skip: process.getuid?.() === 0 ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
  const dir = join(mesh.ca.dir, 'id-foreign-entry');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', mesh.ca.caDir, '--service', 'orders', '--out', dir]);
  await chmod(dir, 0o700);
  await writeFile(join(dir, 'x'), '');
  await chown(join(dir, 'x'), 65534, 65534);
  const file = await config('foreign-entry', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.equal(text.code, 1, text.stdout);
  t.match(text.stdout, new RegExp(`^✗ identity: identity\\.dir ${dir} holds x \\(uid 65534\\), owned by another user .*: the sidecar neither uses what is stored there nor saves into it .* — fix: remove what is not yours from ${dir}$`, 'm'));
});

t.test('an identity.dir under a plain file: the sidecar could never store its SVID', async (t) => {
  const parent = join(mesh.ca.dir, 'not-a-folder');
  await mkdir(mesh.ca.dir, { recursive: true });
  await writeFile(parent, 'a file\n');
  const dir = join(parent, 'identity');
  const file = await config('under-a-file', dir, await mesh.ca.tokenFile('orders'));
  const text = await cli(['doctor', '--config', file]);
  t.equal(text.code, 1);
  t.match(text.stdout, new RegExp(`^✗ identity: identity\\.dir ${dir} cannot be created: ${parent} is not a folder, so the sidecar cannot store an SVID: each start spends the join token again — fix: point identity\\.dir at a folder`, 'm'));
  t.equal(text.stdout.split('\n').filter((l) => l.startsWith('✗')).length, 1, `one ✗:\n${text.stdout}`);
});

t.test("an identity.dir holding another service's SVID: the ✗ names the fix", async (t) => {
  const dir = join(mesh.ca.dir, 'id-billing');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', mesh.ca.caDir, '--service', 'billing', '--out', dir]);
  const file = await config('another-service', dir, await mesh.ca.tokenFile('orders'));
  const json = await cli(['doctor', '--config', file, '--json']);
  t.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; checks: CheckResult[] };
  t.match(report.checks.find((c) => c.name === 'identity'), {
    status: 'fail',
    message: /svid\.crt: certificate \(serial [0-9a-f]+\) is for spiffe:\/\/mesh\.local\/svc\/billing, expected spiffe:\/\/mesh\.local\/svc\/orders$/,
    fix: /^identity\.dir holds another service's SVID: give each service its own identity\.dir/,
  });
  t.same(report.checks.filter((c) => c.status === 'fail').map((c) => c.name), ['identity'], 'one ✗');
});

t.test('a single-use token spent by a first start, needed again after identity.dir was lost: the line says a spent one shows only on use', async (t) => {
  const token = join(mesh.ca.dir, 'orders-single.token');
  await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', mesh.ca.caDir, '--service', 'orders', '--single-use', '--out', token]);
  const first = await config('single-first', join(mesh.ca.dir, 'id-single-first'), token);
  // the first start spends it: SIGTERM once it is ready (execFile's own kill, bounded at 20 s)
  const spent = await new Promise<void>((resolve) => {
    const child = execFile(process.execPath, [CLI, 'run', '--config', first], { timeout: 20_000 }, () => resolve());
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('sidecar ready')) child.kill('SIGTERM');
    });
  });
  await spent;
  const lost = await config('single-again', join(mesh.ca.dir, 'id-single-again'), token);
  const text = await cli(['doctor', '--config', lost]);
  t.match(text.stdout, /^✓ join token: .*orders-single\.token: for spiffe:\/\/mesh\.local\/svc\/orders, valid until \S+, single use \(its signing key, and whether a sidecar already spent it, are checked by the CA only when it is used: a spent one is refused with 401 token_used\)$/m);
  const run = await cli(['run', '--config', lost]);
  t.equal(run.code, 1);
  t.match(run.stdout + run.stderr, /401 token_used/, 'as the line warned');
});

t.test('an SVID that expired while the sidecar was stopped, and a valid token: a warning, exit 0, and the sidecar starts', async (t) => {
  const dir = join(mesh.ca.dir, 'id-expired');
  await execFileAsync(process.execPath, [CLI, 'ca', 'issue', '--dir', mesh.ca.caDir, '--service', 'orders', '--ttl', '1s', '--out', dir]);
  const notAfter = Date.parse(new X509Certificate(await readFile(join(dir, 'svid.crt'))).validTo);
  for (let i = 0; i < 100 && Date.now() <= notAfter; i++) await sleep(Math.max(10, Math.min(500, notAfter - Date.now() + 5)));
  const file = await config('expired-stored', dir, await mesh.ca.tokenFile('orders'));
  const json = await cli(['doctor', '--config', file, '--json']);
  const report = JSON.parse(json.stdout) as { ok: boolean; checks: CheckResult[] };
  t.equal(json.code, 0, json.stdout);
  t.equal(report.ok, true);
  t.match(report.checks.find((c) => c.name === 'identity'), { status: 'warn', message: /svid\.crt: certificate .* expired at \S+: the sidecar passes it over at start and asks the CA for a new one with the join token$/, fix: /^nothing if the join token below is valid/ });
  t.match(report.checks.find((c) => c.name === 'join token'), { status: 'ok', message: /valid until .*\(its signing key is checked by the CA only when the token is used\)$/ }, 'checked as needed');

  const started = await new Promise<boolean>((resolve) => {
    let ready = false;
    const child = execFile(process.execPath, [CLI, 'run', '--config', file], { timeout: 20_000 }, () => resolve(ready));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (!ready && chunk.toString().includes('sidecar ready')) {
        ready = true;
        child.kill('SIGTERM');
      }
    });
  });
  t.ok(started, 'meshcar run gets a new SVID and is ready, as doctor said');
});

// judged for root (the owner of the folder it would be made in) while doctor runs as another
// user: root may write it, doctor's user may not, and doctor's own access() is the answer for
// the user who runs it (a mode check for root let it pass; a re-review)
t.test('doctor run as another user, identity.dir to be made in a root folder it may not write: not writable', { skip: process.getuid?.() === 0 ? false : 'running as another user needs root (CI runs as root)' }, async (t) => {
  const rootFolder = join(mesh.ca.dir, 'root-0755');
  await mkdir(rootFolder, { recursive: true, mode: 0o755 });
  const script = `import { identityDirProblem } from ${JSON.stringify(new URL('../../src/doctor/identity-dir.ts', import.meta.url).pathname)};
    console.log(JSON.stringify((await identityDirProblem(process.argv[1])) ?? null));`;
  const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', new URL('../helpers/ts-loader.mjs', import.meta.url).pathname, '--input-type=module', '-e', script, join(rootFolder, 'identity')], { timeout: 30_000, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const problem = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? 'null') as { message: string } | null;
  t.match(problem?.message, new RegExp(`^identity\\.dir ${rootFolder}/identity cannot be created: ${rootFolder} is not writable \\(EACCES`), 'said as for the user who runs it');
});

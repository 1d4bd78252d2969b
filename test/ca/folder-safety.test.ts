// The files the CA commands write and read must be their user's alone, through the real command
// line: `ca token --out` replaces whatever is at the path (an existing 0644 file, a symlink)
// with a new 0600 file rather than writing through it; `ca init` tightens an existing folder to
// 0700; and serve, issue, token and the rotation commands refuse a CA folder that others can
// write to or that another user owns, in one line naming the folder and the fix.

import t from 'tap';
import { chmod, chown, lchown, lstat, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { runCli } from '../helpers/ca.js';
import { makePrivateCaFolder } from '../../src/ca/init-folder.js';
import { mountNamespaceUnavailable } from '../helpers/mount-namespace.js';

/** Like runCli, but a `ca serve` that wrongly starts is stopped after a while instead of hanging the test. */
function runBounded(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      // killed by the timeout: no exit code, reported as -1
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const NOBODY = 65534;

t.test('ca token --out replaces an existing file or a symlink with a new 0600 file', async (t) => {
  const dir = t.testdir({ 'victim.txt': 'not yours\n' });
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const existing = join(dir, 'existing.token');
  await writeFile(existing, 'old\n', { mode: 0o644 });
  await chmod(existing, 0o644);
  const linked = join(dir, 'linked.token');
  await symlink(join(dir, 'victim.txt'), linked);
  await chmod(join(dir, 'victim.txt'), 0o644);
  for (const path of [existing, linked]) {
    const out = await runCli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', path]);
    t.equal(out.code, 0, out.stderr);
    const info = await lstat(path);
    t.ok(info.isFile(), `${path} is a regular file now`);
    t.equal(info.mode & 0o777, 0o600, `${path} is 0600`);
    t.match(await readFile(path, 'utf8'), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/, 'it holds the token');
  }
  t.equal(await readFile(join(dir, 'victim.txt'), 'utf8'), 'not yours\n', "the symlink's target is untouched");
  t.equal((await stat(join(dir, 'victim.txt'))).mode & 0o777, 0o644, 'and keeps its mode');
});

t.test('ca init tightens an existing 0777 folder to 0700', async (t) => {
  const ca = join(t.testdir(), 'ca');
  await mkdir(ca);
  await chmod(ca, 0o777);
  const init = await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local']);
  t.equal(init.code, 0, init.stderr);
  t.equal((await stat(ca)).mode & 0o777, 0o700);
});

t.test('a CA folder others can write to, or another user owns, is refused in one line', async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const config = join(dir, 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${ca}\nlisten: "127.0.0.1:0"\n`);
  const commands = [
    ['ca', 'serve', '--config', config],
    ['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(dir, 'orders')],
    ['ca', 'token', '--dir', ca, '--service', 'orders'],
    ['ca', 'root', 'add', '--dir', ca],
    ['ca', 'rotate-issuer', '--dir', ca],
  ];
  const escaped = ca.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // every command at 0777; the wording of the other two cases with one of them
  for (const [mode, who, checked] of [[0o777, 'group and others', commands], [0o770, 'its group', commands.slice(2, 3)], [0o702, 'others', commands.slice(2, 3)]] as const) {
    await chmod(ca, mode);
    const results = await Promise.all(checked.map((args) => runBounded(args)));
    results.forEach((result, i) => {
      t.equal(result.code, 1, `${checked[i]?.slice(0, 2).join(' ')} refuses mode ${mode.toString(8)}`);
      t.match(result.stderr, new RegExp(`^meshcar: the CA folder ${escaped} is writable by ${who} \\(mode 0${mode.toString(8)}\\), who could replace its keys; run "chmod 700 ${escaped}"\\n$`));
    });
  }
  await chmod(ca, 0o700);
  t.equal((await runCli(['ca', 'token', '--dir', ca, '--service', 'orders'])).code, 0, 'a 0700 folder is fine again');
  if (process.getuid?.() !== 0) {
    t.skip('another owner: chown needs root, and this test runs as a user');
    return;
  }
  await chown(ca, NOBODY, NOBODY);
  for (const args of commands.slice(1, 4)) {
    const result = await runCli(args);
    t.equal(result.code, 1, `${args.slice(0, 2).join(' ')} refuses a folder owned by uid ${NOBODY}`);
    t.match(result.stderr, new RegExp(`^meshcar: the CA folder ${escaped} is owned by uid ${NOBODY}, not by the user running meshcar \\(uid 0\\), who could replace its keys; run "chown 0 ${escaped} && chmod 700 ${escaped}" \\(as root\\), or run meshcar as its owner\\n$`));
  }
});

// ca serve read its token ledger first: a `dir` that was a file said "used-tokens.json cannot be
// read (ENOTDIR ...); it records spent single-use tokens and must not be lost" (review)
t.test('ca serve with a dir that is a file: one line saying so, as check says it', async (t) => {
  const dir = t.testdir({ 'not-a-folder': 'x\n' });
  const config = join(dir, 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${join(dir, 'not-a-folder')}\nlisten: "127.0.0.1:0"\n`);
  const result = await runBounded(['ca', 'serve', '--config', config]);
  t.equal(result.code, 1, 'exit 1');
  t.match(result.stderr, /^meshcar: \S+not-a-folder: is a file, not a folder; give the CA folder \(made by meshcar ca init\)\n$/, `one line (${result.stderr.trim()})`);
});

// a folder at 0755 with its keys at 0644 (a backup restored under another umask) was taken as it
// was: any local user could read the root or token key and mint join tokens (a review)
t.test("a key others can read, or a file others can write, in the CA folder is refused in one line", async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  await chmod(ca, 0o755); // readable by all: the folder's own check lets it be (nobody else can write)
  const config = join(dir, 'ca.yaml');
  await writeFile(config, `trustDomain: mesh.local\ndir: ${ca}\nlisten: "127.0.0.1:0"\n`);
  const commands = [
    ['ca', 'serve', '--config', config],
    ['ca', 'status', '--dir', ca],
    ['ca', 'token', '--dir', ca, '--service', 'orders'],
    ['ca', 'root', 'add', '--dir', ca],
  ];
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [file, mode, line] of [
    ['root.key', 0o644, 'can be read or written by group and others (mode 0644), who could sign with it; run "chmod 600'],
    ['token.key', 0o640, 'can be read or written by its group (mode 0640), who could sign with it; run "chmod 600'],
    ['issuer.key', 0o604, 'can be read or written by others (mode 0604), who could sign with it; run "chmod 600'],
  ] as const) {
    const path = join(ca, file);
    await chmod(path, mode);
    const results = await Promise.all(commands.map((args) => runBounded(args)));
    results.forEach((result, i) => {
      t.equal(result.code, 1, `${commands[i]?.slice(0, 2).join(' ')} refuses ${file} at ${mode.toString(8)}`);
      t.match(result.stderr, new RegExp(`^meshcar: the CA key ${escape(path)} ${escape(line)} ${escape(path)}"\\n$`));
    });
    await chmod(path, 0o600);
  }
  const keys = join(ca, 'token-keys.json');
  await chmod(keys, 0o666);
  const written = await runBounded(['ca', 'token', '--dir', ca, '--service', 'orders']);
  t.equal(written.code, 1, 'token-keys.json writable by others: refused');
  t.match(written.stderr, new RegExp(`^meshcar: ${escape(keys)} in the CA folder is writable by group and others \\(mode 0666\\), who could replace it; run "chmod go-w ${escape(keys)}"\\n$`));
  await chmod(keys, 0o644);
  t.equal((await runCli(['ca', 'token', '--dir', ca, '--service', 'orders'])).code, 0, 'every key 0600 and no file writable by others: fine again');
});

// ca init refuses loose files as every command does (it does not rewrite them all: a record of
// leaf lifetimes, a temporary file a killed writer left): the Kubernetes init container opens the
// folder up before it (kubernetes-ca-init.test.ts)
t.test('ca init --force over a key its group can read is refused in one line, like every ca command', async (t) => {
  const ca = join(t.testdir(), 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  await chmod(join(ca, 'root.key'), 0o640);
  const forced = await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local', '--force']);
  t.equal(forced.code, 1, 'refused');
  t.match(forced.stderr, /^meshcar: the CA key .*root\.key can be read or written by its group \(mode 0640\), who could sign with it; run "chmod 600 .*root\.key"\n$/);
});

t.test('copies of a key (root.key.bak, a temporary file, a key in a subfolder) are judged as keys', async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const key = await readFile(join(ca, 'root.key'));
  await mkdir(join(ca, 'backup'), { mode: 0o700 });
  for (const copy of ['root.key.bak', '.root.key.0a1b2c.tmp', 'backup/root.key']) {
    const path = join(ca, copy);
    await writeFile(path, key, { mode: 0o644 });
    await chmod(path, 0o644);
    const result = await runBounded(['ca', 'status', '--dir', ca]);
    t.equal(result.code, 1, `${copy} at 0644: refused`);
    t.match(result.stderr, `the CA key ${path} can be read or written by group and others (mode 0644)`, `${copy}: the line names it`);
    await chmod(path, 0o600);
    t.equal((await runBounded(['ca', 'status', '--dir', ca])).code, 0, `${copy} at 0600: fine`);
  }
});

t.test("a volume's root-owned lost+found does not refuse a CA folder of another user's", { skip: process.getuid?.() === 0 ? false : 'needs root to run as another user (CI runs as root)' }, async (t) => {
  const dir = t.testdir();
  await chmod(dir, 0o755);
  const ca = join(dir, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  await mkdir(join(ca, 'lost+found'), { mode: 0o700 });
  await chmod(join(ca, 'lost+found'), 0o700);
  await chownTree(ca, NOBODY);
  await chown(join(ca, 'lost+found'), 0, 0);
  const status = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, 'ca', 'status', '--dir', ca], { timeout: 15_000, uid: NOBODY, gid: NOBODY }, (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr })),
  );
  t.equal(status.code, 0, `uid ${NOBODY}'s CA folder with root's lost+found in it: ca status works (${status.stderr.trim()})`);
});

async function chownTree(path: string, uid: number): Promise<void> {
  await chown(path, uid, uid);
  const info = await stat(path);
  if (!info.isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid);
}

// the folders above the CA folder were not judged: in a 0777 parent without the sticky bit, a
// local user renamed `ca` and linked another root-owned CA folder in its place, and `ca status`
// and `ca token` used it (a review)
t.test('a CA folder under a folder others may write is refused in one line', { skip: process.getuid?.() === 0 ? false : 'a folder as another user needs root (CI runs as root)' }, async (t) => {
  const parent = join(t.testdir(), 'shared');
  await mkdir(parent);
  const ca = join(parent, 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  await chmod(parent, 0o777);
  const refused = await runCli(['ca', 'token', '--dir', ca, '--service', 'orders']);
  t.equal(refused.code, 1, 'refused');
  t.match(refused.stderr, /^meshcar: the CA folder \S+\/shared\/ca: \S+\/shared, a folder above it, is writable by group and others \(mode 0777, no sticky bit\), so another user could swap it for a folder of their choosing; keep the CA folder under folders only its user or root may write\n$/);
  await chmod(parent, 0o1777);
  t.equal((await runCli(['ca', 'token', '--dir', ca, '--service', 'orders'])).code, 0, 'with the sticky bit (as /tmp): fine');
});

// ca init made the folder, then judged the folders above it and refused: the folder was left
// behind, made where the path it distrusted led (a review)
t.test('ca init under a folder its group may write: refused before anything is made', async (t) => {
  const parent = join(t.testdir(), 'group-writable');
  await mkdir(parent);
  await chmod(parent, 0o775);
  const ca = join(parent, 'ca');
  const refused = await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local']);
  t.equal(refused.code, 1, 'refused');
  t.match(refused.stderr, /^meshcar: the CA folder \S+\/ca: \S+\/group-writable, a folder above it, is writable by its group \(mode 0775, no sticky bit\)/);
  t.same(await readdir(parent), [], 'and nothing made there');
});

// ca init judged the path, then made it with a recursive mkdir and a chmod, which walked it again:
// another user who made a missing part meanwhile (theirs, in a sticky folder), holding a link to
// a folder of their choosing, had root make that folder 0700 (a review: 2 of 76 races; / or
// /tmp as easily). Each part is now judged before anything is made in it.
t.test('ca init: a missing part another user makes meanwhile, holding a link, makes nothing private where it leads', { skip: process.getuid?.() === 0 ? false : 'a folder as another user needs root (CI runs as root)' }, async (t) => {
  const { sticky: pub, victim } = await stickyAndVictim(t);
  await writeFile(join(victim, 'marker'), 'x');
  const theirs = join(pub, 'a');
  const ca = join(theirs, 'ca');
  let moved = false;
  // at the first mkdir, as if between the judgement and it: their folder, their link
  const theirMove = async (): Promise<void> => {
    if (moved) return;
    moved = true;
    await mkdir(theirs);
    await symlink(victim, join(theirs, 'ca'));
    await lchown(join(theirs, 'ca'), 65534, 65534);
    await chown(theirs, 65534, 65534);
  };
  await t.rejects(makePrivateCaFolder(ca, theirMove), new RegExp(`the CA folder ${ca}: ${theirs} is owned by uid 65534, in ${pub}`), 'refused, in the words of the judgement before');
  t.ok(moved, 'their move came between the judgement and a mkdir');
  t.equal((await stat(victim)).mode & 0o7777, 0o755, 'the folder their link led to keeps its mode');
  t.same(await readdir(victim), ['marker'], 'and nothing was made in it');
  // made by ca init alone: a private folder
  const own = join(pub, 'own', 'ca');
  await makePrivateCaFolder(own);
  t.equal((await stat(own)).mode & 0o7777, 0o700, 'a folder made without interference: 0700');
});

// The part to make was found by walking the judged path again from the root, which followed a
// link another user put at that part after the judgement: root made victim/next through
// sticky/M -> victim (a re-review: 256 of 3,000 races). The part judged missing is made itself.
t.test('ca init: a link another user puts at the missing part after the judgement makes nothing where it leads', { skip: process.getuid?.() === 0 ? false : 'a link as another user needs root (CI runs as root)' }, async (t) => {
  const { sticky, victim } = await stickyAndVictim(t);
  const M = join(sticky, 'M');
  const made: string[] = [];
  const theirLink = async (folder: string): Promise<void> => {
    made.push(folder);
    if (made.length > 1) return;
    await symlink(victim, M);
    await lchown(M, 65534, 65534);
  };
  await t.rejects(makePrivateCaFolder(join(M, 'next'), theirLink), new RegExp(`the CA folder ${M}/next: ${M} is owned by uid 65534, in ${sticky}`), 'refused: the part is theirs now');
  t.same(made, [M], 'the part judged missing was the one to be made');
  t.same(await readdir(victim), [], 'nothing made where their link leads');
});

// ca init makes its folder 0700 through a handle, whose errors name no path: an empty folder on a
// read-only file system ended in a stack trace and exit 70 (a re-review), where the path's chmod
// had said it in one line
t.test('ca init on an empty folder of a read-only file system: one line, exit 1', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const dir = join(t.testdir(), 'read-only');
  await mkdir(dir);
  const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o ro,mode=755 meshcar-test-ro "$1" && exec "$0" "$2" ca init --dir "$1" --trust-domain mesh.local', process.execPath, dir, cli], { timeout: 30_000, encoding: 'utf8' });
  t.equal(run.status, 1, 'exit 1');
  t.equal(run.stderr, `meshcar: ${dir}: is on a read-only file system; choose a writable place\n`, 'one line saying so');
});

// the path judgement and the files' names take `..` away as text, the kernel after the folder
// before it: `x/../ca` with x missing made ca, then was not found ("does not exist; run ca init
// first": a re-review). It is resolved once, first.
t.test('ca init --dir x/../ca with x missing: the CA is made at ca, as the other commands then find it', async (t) => {
  const base = t.testdir();
  const made = await runCli(['ca', 'init', '--dir', `${base}/x/../ca`, '--trust-domain', 'mesh.local']);
  t.equal(made.code, 0, made.stderr);
  t.equal((await runCli(['ca', 'token', '--dir', join(base, 'ca'), '--service', 'orders'])).code, 0, 'ca token finds it at ca');
});

// the folders are made one part per turn: a bound of 64 turns made 64 of 70 missing folders and
// then said the path "changed while it was made" (a re-review); the bound is the path's parts
t.test('ca init --dir with 70 missing folders above it: made in one run', async (t) => {
  const deep = join(t.testdir(), ...Array.from({ length: 70 }, (_, i) => `p${i}`), 'ca');
  const made = await runCli(['ca', 'init', '--dir', deep, '--trust-domain', 'mesh.local']);
  t.equal(made.code, 0, made.stderr);
  t.equal((await stat(deep)).mode & 0o777, 0o700, 'the CA folder, 0700');
});

/** A sticky folder open to all (as /tmp) and a root folder at 0755 beside it, in the test's folder. */
async function stickyAndVictim(t: Tap.Test): Promise<{ sticky: string; victim: string }> {
  const base = t.testdir();
  const sticky = join(base, 'sticky');
  await mkdir(sticky);
  await chmod(sticky, 0o1777);
  const victim = join(base, 'victim');
  await mkdir(victim);
  await chmod(victim, 0o755);
  return { sticky, victim };
}

// An --out (or --dir) under /proc, /sys or /dev is refused even where its links lead elsewhere:
// `meshcar ca token --out /dev/stdout` with stdout redirected to a file passed the check (the
// link leads to the file) and the token file was renamed over the host's /dev/stdout link
// itself. The judgement is tested in this process, where nothing is written; the whole command
// in a mount namespace of its own with a scratch tmpfs on /dev, so a writer that slips through
// replaces only that scratch /dev's link, never the host's.

import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { refuseKernelPath } from '../../src/user-paths.js';
import { mountNamespaceUnavailable } from '../helpers/mount-namespace.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

const under = (top: string) => new RegExp(`: is under /${top}, a file system of the kernel; choose another path$`);

t.test('a path under /dev or /proc is refused where its links lead out: judged, nothing written', async (t) => {
  const dir = t.testdir({ 'token.txt': '', fds: t.fixture('symlink', '/dev/fd'), folder: {} });
  // a descriptor of this process on a regular file: /dev/fd/N leads to it, out of /dev
  const fd = openSync(join(dir, 'token.txt'), 'r');
  t.teardown(() => closeSync(fd));
  const refused: Array<[string, string]> = [
    [`/dev/fd/${fd}`, 'dev'],
    [`/proc/self/fd/${fd}`, 'proc'],
    // the folder holding the entry is a link into /proc: the rename would happen there
    [join(dir, 'fds', String(fd)), 'proc'],
    // `link/..` is where the kernel goes: the parent of /proc/self/fd, not this test folder
    [`${dir}/fds/../token`, 'proc'],
  ];
  for (const [path, top] of refused) t.throws(() => refuseKernelPath(path), { code: 'bad_path', message: under(top) }, path);
  // a link here to /dev/stdout is replaced, not followed: writing it leaves /dev alone
  for (const path of [join(dir, 'token.txt'), join(dir, 'folder', 'new.token'), join(dir, 'fds-not', '..', 'x')]) t.doesNotThrow(() => refuseKernelPath(path), path);
});

/**
 * Runs in a private mount namespace. A fresh tmpfs is empty: when /dev is not, the mount did not
 * happen and nothing that could write there runs (exit 98). Each line printed is
 * `NAME EXIT LINK`: a command's exit code and what its /dev entry is afterwards.
 */
const SCRIPT = `
mount -t tmpfs meshcar-test-dev /dev || exit 97
[ -z "$(ls -A /dev)" ] || exit 98
ln -s /proc/self/fd /dev/fd && ln -s /proc/self/fd/1 /dev/stdout && ln -s /proc/self/fd/2 /dev/stderr && mknod -m 666 /dev/null c 1 3 || exit 99
ln -s "$OUT/issued" /dev/issued || exit 99
token() { "$NODE" "$CLI" ca token --dir "$OUT/ca" --service orders "$@" < /dev/null; }
token --out /dev/stdout > "$OUT/stdout.out" 2> "$OUT/stdout.err"; echo "stdout $? $(readlink /dev/stdout)"
token --out /dev/stderr > "$OUT/stderr.out" 2> "$OUT/stderr.err"; echo "stderr $? $(readlink /dev/stderr)"
token --out /dev/fd/5 5> "$OUT/fd5.file" > "$OUT/fd5.out" 2> "$OUT/fd5.err"; echo "fd5 $? $(readlink /dev/fd)"
"$NODE" "$CLI" ca issue --dir "$OUT/ca" --service orders --out /dev/issued < /dev/null > "$OUT/issued.out" 2> "$OUT/issued.err"; echo "issued $? $(readlink /dev/issued)"
`;

const unavailable = mountNamespaceUnavailable();

t.test('ca token --out /dev/stdout (stderr, fd/N) with the stream in a file, and ca issue --out a link in /dev: exit 1, one line, the link kept', { skip: unavailable ?? false }, async (t) => {
  const out = t.testdir({ issued: {} });
  const init = spawnSync(process.execPath, [CLI, 'ca', 'init', '--dir', join(out, 'ca'), '--trust-domain', 'mesh.local'], { timeout: 20_000 });
  t.equal(init.status, 0, String(init.stderr));
  const printed = await new Promise<string>((resolve, reject) =>
    execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', SCRIPT], { timeout: 60_000, env: { ...process.env, NODE: process.execPath, CLI, OUT: out } }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout))),
  );
  t.same(printed.trim().split('\n'), ['stdout 1 /proc/self/fd/1', 'stderr 1 /proc/self/fd/2', 'fd5 1 /proc/self/fd', `issued 1 ${out}/issued`], 'each refused; each link is still the link');
  const read = (name: string) => readFile(join(out, name), 'utf8');
  t.equal(await read('stdout.err'), 'meshcar: /dev/stdout: is under /dev, a file system of the kernel; choose another path\n');
  t.equal(await read('stderr.err'), 'meshcar: /dev/stderr: is under /dev, a file system of the kernel; choose another path\n');
  t.equal(await read('fd5.err'), 'meshcar: /dev/fd/5: is under /dev, a file system of the kernel; choose another path\n');
  t.equal(await read('issued.err'), 'meshcar: /dev/issued: is under /dev, a file system of the kernel; choose another path\n');
  // nothing was printed or written in place of the token, and no leaf was written through the link
  for (const name of ['stdout.out', 'stderr.out', 'fd5.file', 'fd5.out', 'issued.out']) t.equal(await read(name), '', name);
  t.same(await readdir(join(out, 'issued')), []);
});

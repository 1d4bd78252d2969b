// A full disk under the CA commands' files is one line naming the file and what to do, exit 1:
// `ca init`, `ca token --out` and `ca issue --out` on a file system with no room left printed
// "unexpected failure: Error: ENOSPC ... write" with a stack, exit 70 (a FileHandle's errors
// carry no path, so the line saying which file could not be made). Each command runs in a
// mount namespace of its own on a small tmpfs filled to a set point, so the host's disks are
// never filled: one with no page left (the CA's lock file fails), one with a page left (the
// lock is taken, the CA's first key fails).

import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mountNamespaceUnavailable } from '../helpers/mount-namespace.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/**
 * In a private mount namespace: a tmpfs of $SIZE on $FULL, $FILL bytes taken, then `ca init`
 * and, with $ALL=1, the other commands;
 * each prints `NAME EXIT` on stdout, its stderr in $OUT/NAME.err. A tmpfs not empty after the
 * mount means the mount did not happen: nothing runs (exit 98).
 */
const SCRIPT = `
mount -t tmpfs -o size=$SIZE meshcar-test-full "$FULL" || exit 97
[ -z "$(ls -A "$FULL")" ] || exit 98
head -c "$FILL" /dev/zero > "$FULL/filler" 2>/dev/null
run() { name=$1; shift; "$NODE" "$CLI" "$@" < /dev/null > /dev/null 2> "$OUT/$name.err"; echo "$name $?"; }
run init ca init --dir "$FULL/ca" --trust-domain mesh.local
[ "$ALL" = 1 ] || exit 0
run token ca token --dir "$OUT/ca" --service orders --out "$FULL/orders.token"
run issue ca issue --dir "$OUT/ca" --service orders --out "$FULL/svid"
`;

const unavailable = mountNamespaceUnavailable();
const oneLine = (path: string) => new RegExp(`^meshcar: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*: no space left on the device; free some space\\n$`);

t.test('ca init, ca token --out and ca issue --out on a full disk: one line naming the file, exit 1', { skip: unavailable ?? false }, async (t) => {
  const out = t.testdir({ full: {} });
  const init = spawnSync(process.execPath, [CLI, 'ca', 'init', '--dir', join(out, 'ca'), '--trust-domain', 'mesh.local'], { timeout: 20_000 });
  t.equal(init.status, 0, String(init.stderr));
  const full = join(out, 'full');
  const run = (size: string, fill: number, all: boolean) =>
    new Promise<string>((resolve, reject) =>
      execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', SCRIPT], { timeout: 60_000, env: { ...process.env, NODE: process.execPath, CLI, OUT: out, FULL: full, SIZE: size, FILL: String(fill), ALL: all ? '1' : '0' } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout),
      ),
    );
  // no page left: the CA's lock file cannot be made, nor the token or the issued files
  t.same((await run('4k', 3000, true)).trim().split('\n'), ['init 1', 'token 1', 'issue 1'], 'no page left: each exits 1');
  t.match(await readFile(join(out, 'init.err'), 'utf8'), oneLine(join(full, 'ca', '.lock')), 'ca init: one line naming its lock file');
  t.match(await readFile(join(out, 'token.err'), 'utf8'), oneLine(join(full, 'orders.token')), 'ca token: one line naming the token file');
  t.match(await readFile(join(out, 'issue.err'), 'utf8'), oneLine(join(full, 'svid')), 'ca issue: one line naming a file it writes');
  // pages for the lock and the CA's state: its first key cannot be written
  t.same((await run('12k', 4096, false)).trim().split('\n'), ['init 1'], 'the lock taken, the first key refused: exit 1');
  t.match(await readFile(join(out, 'init.err'), 'utf8'), oneLine(join(full, 'ca', 'root.key')), 'ca init: one line naming the key it could not write');
});

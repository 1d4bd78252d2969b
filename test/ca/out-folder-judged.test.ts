// `ca issue --out` is judged, and its missing folders made one part at a time, each judged first
// (src/ca/out-path.ts makeOutFolder): a recursive mkdir made them through whatever another user
// had put on the way, so root running `ca issue --out /tmp/theirs/svid` wrote the SVID's key into
// a folder that user owns, or where their link in /tmp led; an existing folder of theirs, or their
// link to one of ours, too. Refused in one line before anything is signed; a path of our own in
// the same sticky folder is still made. As root with a real CLI run (a link and a folder of
// another user, uid 65534); and a path with `..` after a missing part.

import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, chown, lchown, mkdir, readdir, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** A new folder of exactly `mode` (mkdir's is narrowed by the umask). */
async function folderWithMode(path: string, mode: number): Promise<string> {
  await mkdir(path);
  await chmod(path, mode);
  return path;
}

t.test('ca issue --out through another user\'s folder or link in a sticky folder: refused, nothing made there', { skip: process.getuid?.() === 0 ? false : 'another user\'s folder and link need root (CI runs as root)' }, async (t) => {
  const base = t.testdir();
  const ca = join(base, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const sticky = await folderWithMode(join(base, 'sticky'), 0o1777);
  const victim = join(base, 'victim');
  await mkdir(victim);
  // theirs: a folder and a link of uid 65534 in the sticky folder
  const theirs = join(sticky, 'theirs');
  await mkdir(theirs);
  await chown(theirs, 65534, 65534);
  const link = join(sticky, 'M');
  await symlink(victim, link);
  await lchown(link, 65534, 65534);
  for (const [out, owner] of [[join(theirs, 'svid'), theirs], [join(link, 'svid'), link]] as const) {
    const run = await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', out, '--ttl', '1h']);
    t.equal(run.code, 1, `${out}: exit 1`);
    t.equal(run.stderr, `meshcar: ${out}: refused, since another user could change where it leads (${owner} is owned by uid 65534, in ${sticky}, which group and others may write (mode 1777)); choose a folder only you (or root) can change\n`, 'one line saying why');
  }
  t.same(await readdir(theirs), [], 'nothing made in their folder');
  t.same(await readdir(victim), [], 'nothing made where their link leads');
  // the folder itself theirs, or their link to a folder of ours that exists: judged all the same
  // (a re-review: the key and a bundle.pem they then swapped for their own root went into theirs,
  // and ours took the files through their link)
  const ours = join(base, 'ours');
  await mkdir(ours, { mode: 0o700 });
  const toOurs = join(sticky, 'to-ours');
  await symlink(ours, toOurs);
  await lchown(toOurs, 65534, 65534);
  for (const [out, owner] of [[theirs, theirs], [toOurs, toOurs]] as const) {
    const run = await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', out, '--ttl', '1h']);
    t.equal(run.code, 1, `${out}, existing: exit 1`);
    t.equal(run.stderr, `meshcar: ${out}: refused, since another user could change where it leads (${owner} is owned by uid 65534, in ${sticky}, which group and others may write (mode 1777)); choose a folder only you (or root) can change\n`, 'one line saying why');
  }
  t.same(await readdir(theirs), [], 'nothing written in their existing folder');
  t.same(await readdir(ours), [], 'nothing written where their link to our folder leads');
  const own = join(sticky, 'own', 'svid');
  const made = await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', own, '--ttl', '1h']);
  t.equal(made.code, 0, made.stderr);
  t.same((await readdir(own)).sort(), ['bundle.pem', 'svid.crt', 'svid.key'], 'a path of our own in the sticky folder: made, the SVID written');
  t.equal((await stat(own)).mode & 0o7777, 0o700, 'its folder 0700');
});

// the judgement and the files' names take `..` away as text, the kernel through the part before
// it: `missing/../certs/z` made certs/z, then failed "does not exist" (a re-review). Resolved first.
t.test('ca issue --out x/../certs/z with x missing: the SVID is written at certs/z', async (t) => {
  const base = t.testdir();
  const ca = join(base, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  // (as typed: join() would take the `..` away itself)
  const run = await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', `${base}/x/../certs/y/../z`, '--ttl', '1h']);
  t.equal(run.code, 0, run.stderr);
  t.same((await readdir(join(base, 'certs', 'z'))).sort(), ['bundle.pem', 'svid.crt', 'svid.key']);
});

// the out folder itself: one another user owns, or one its group or others may write (not
// sticky), lets them replace what is written there (a bundle.pem of their own root beside the
// key); `ca token --out`'s folder is judged the same (a re-review). /tmp-like sticky folders pass.
t.test('an out folder others may write, or another user owns: refused for ca issue and ca token; a sticky one passes', { skip: process.getuid?.() === 0 ? false : 'another user\'s folder needs root (CI runs as root)' }, async (t) => {
  const base = t.testdir();
  await chmod(base, 0o755);
  const ca = join(base, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const team = await folderWithMode(join(base, 'team'), 0o775);
  const open = await folderWithMode(join(base, 'open'), 0o777);
  const alices = join(base, 'alices');
  await mkdir(alices);
  await chown(alices, 65534, 65534);
  const cases: Array<[string, string]> = [
    [team, `refused, since its group may write ${team} (mode 0775) and so replace what is written there`],
    [open, `refused, since group and others may write ${open} (mode 0777) and so replace what is written there`],
    [alices, `refused, since ${alices} is owned by uid 65534, not by the user running meshcar (uid 0), who could replace what is written there`],
  ];
  for (const [folder, why] of cases) {
    const issued = await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', folder, '--ttl', '1h']);
    t.equal(issued.stderr, `meshcar: ${folder}: ${why}; choose a folder only you (or root) can change\n`, `ca issue --out ${folder}`);
    const file = join(folder, 'orders.token');
    const token = await cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', file]);
    t.equal(token.stderr, `meshcar: ${file}: ${why}; choose a folder only you (or root) can change\n`, `ca token --out ${file}`);
    t.same(await readdir(folder), [], 'nothing written there');
  }
  // their link on the way to a token file, in a sticky folder
  const sticky = await folderWithMode(join(base, 'sticky'), 0o1777);
  const link = join(sticky, 'L');
  await symlink(join(base, 'ours'), link);
  await mkdir(join(base, 'ours'), { mode: 0o700 });
  await lchown(link, 65534, 65534);
  const viaLink = await cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(link, 'orders.token')]);
  t.match(viaLink.stderr, new RegExp(`^meshcar: ${join(link, 'orders.token')}: refused, since another user could change where it leads \\(${link} is owned by uid 65534`), 'a token through their link: refused');
  t.same(await readdir(join(base, 'ours')), [], 'nothing written where it leads');
  // a sticky folder as the out folder itself, and our own: written
  t.equal((await cli(['ca', 'token', '--dir', ca, '--service', 'orders', '--out', join(sticky, 'orders.token')])).code, 0, 'a token in the sticky folder itself');
  t.equal((await cli(['ca', 'issue', '--dir', ca, '--service', 'orders', '--out', join(base, 'ours'), '--ttl', '1h'])).code, 0, 'an SVID in a folder of our own');
});

// A stored SVID is served only from a folder no one else could have written: one that is
// group- or world-writable, or owned by another user, may hold a set someone planted (a leaf for
// this service under their own root, with that root as the bundle), which was served, and its
// root trusted for every peer, whenever the CA could not be reached at start. Such a folder's
// sets are passed over (a new SVID is requested) with a warning that names the fix; the next
// save makes the folder 0700 again, after which its sets are used as before. The folder is
// judged by path, then each file is opened again by path: so each file read is judged too, on the
// opened file itself (another user's file is not used, whatever path led to it), which a user who
// may write a folder above identity.dir and swaps in a link to their own set cannot get past.

import t from 'tap';
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { validateSvid } from '../../src/identity/svid.js';
import { DiskStore } from '../../src/identity/disk-store.js';

const ID = 'spiffe://mesh.test/svc/orders';

t.test('a folder others can write is not trusted for a stored SVID', async (t) => {
  const pki = await makePki();
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-folder-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'identity');
  const lines: Array<Record<string, unknown>> = [];
  const store = new DiskStore(dir, memoryLogger(lines));
  const svid = validateSvid(await pki.issue(ID), ID);
  await store.save(svid);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'a 0700 folder of ours: the stored set is used');

  for (const [mode, who] of [
    [0o777, 'group and others'],
    [0o770, 'its group'],
    [0o702, 'others'],
  ] as const) {
    await chmod(dir, mode);
    lines.length = 0;
    t.equal(await store.load(ID), undefined, `mode ${mode.toString(8)}: not used`);
    t.match(String(lines.at(-1)?.msg), new RegExp(`writable by ${who} \\(mode 0${mode.toString(8)}\\).*chmod 700`), `mode ${mode.toString(8)}: the warning says why and what to do`);
  }
  await store.save(svid);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'the next save made it 0700: used again');

  const root = process.getuid?.() === 0;
  t.test('owned by another user', { skip: root ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
    await chown(dir, 65534, 65534);
    lines.length = 0;
    t.equal(await store.load(ID), undefined, 'not used');
    t.match(String(lines.at(-1)?.msg), /owned by uid 65534, not by the user running meshcar \(uid 0\)/, 'the warning says why');
    await chown(dir, 0, 0);
    t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'ours again: used');
  });
});

t.test("another user's files are not used, whatever path led to them", { skip: root() ? false : 'chown to another user needs root (CI runs as root)' }, async (t) => {
  const pki = await makePki();
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-files-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'identity');
  const lines: Array<Record<string, unknown>> = [];
  const store = new DiskStore(dir, memoryLogger(lines));
  const svid = validateSvid(await pki.issue(ID), ID);
  await store.save(svid);
  const generation = join(dir, 'current');
  for (const file of ['svid.crt', 'svid.key', 'bundle.pem']) await chown(join(generation, file), 65534, 65534);
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'files owned by another user in a folder of ours: not used');
  t.match(String(lines.at(-1)?.msg), /svid\.(crt|key)|bundle\.pem/, 'the warning names the file');
  t.match(String(lines.at(-1)?.msg), /is owned by uid 65534, not by the user running meshcar \(uid 0\) or root, so it may not be ours/, 'and says why');

  for (const file of ['svid.crt', 'svid.key', 'bundle.pem']) await chown(join(generation, file), 0, 0);
  await chmod(join(generation, 'svid.crt'), 0o666);
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'a file others may write: not used');
  t.match(String(lines.at(-1)?.msg), /svid\.crt is writable by group and others \(mode 0666\)/, 'the warning says which and why');
  await chmod(join(generation, 'svid.crt'), 0o644);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'ours again: used');

  await chown(dir, 65534, 65534);
  await chmod(dir, 0o755);
  await t.rejects(store.save(svid), /is owned by uid 65534, not by the user running meshcar \(uid 0\): not saving keys into it/, "a save into another user's folder is refused");
  t.equal((await stat(dir)).mode & 0o777, 0o755, 'and its mode is left as it was (a chmod by path followed a planted link)');
});

t.test('a folder swapped for a link to another user\'s set while it is read: their set is never used', { skip: root() ? false : 'acting as another user needs root (CI runs as root)' }, async (t) => {
  const [ours, theirs] = [await makePki(), await makePki()];
  // a parent others may write (0777, no sticky bit): they may rename what is in it
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-swap-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  await chmod(base, 0o777);
  const dir = join(base, 'identity');
  const store = new DiskStore(dir, memoryLogger([]));
  const svid = validateSvid(await ours.issue(ID), ID);
  await store.save(svid);
  // their set, for the same SPIFFE ID under a root of their own, laid out as ours is, all theirs
  const planted = join(base, 'planted');
  const foreign = validateSvid(await theirs.issue(ID), ID);
  await new DiskStore(planted, memoryLogger([])).save(foreign);
  const chownAll = async (folder: string): Promise<void> => {
    await chown(folder, 65534, 65534);
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) await chownAll(full);
      else await chown(full, 65534, 65534).catch(() => undefined);
    }
  };
  await chownAll(planted);
  await symlink(planted, join(base, 'link'));
  await chown(join(base, 'link'), 65534, 65534).catch(() => undefined);

  // the other user: swaps identity/ for the link and back, as fast as it can, bounded in count and time
  const swapper = spawn(process.execPath, ['-e', `
    const fs = require('node:fs'); const [b] = process.argv.slice(1); const end = Date.now() + 15000;
    for (let i = 0; i < 2000000 && Date.now() < end; i++) {
      try { fs.renameSync(b + '/identity', b + '/ours'); fs.renameSync(b + '/link', b + '/identity'); } catch {}
      try { fs.renameSync(b + '/identity', b + '/link'); fs.renameSync(b + '/ours', b + '/identity'); } catch {}
    }`, base], { uid: 65534, gid: 65534, stdio: 'ignore' });
  const exited = new Promise((resolve) => swapper.once('exit', resolve));
  t.teardown(() => { swapper.kill('SIGKILL'); });

  const used = new Map<string, number>();
  const deadline = Date.now() + 8_000;
  for (let i = 0; i < 3_000 && Date.now() < deadline; i++) {
    const loaded = await store.load(ID, { quiet: true, readOnly: true });
    const who = loaded === undefined ? 'none' : loaded.serialHex === svid.serialHex ? 'ours' : loaded.serialHex === foreign.serialHex ? 'theirs' : 'other';
    used.set(who, (used.get(who) ?? 0) + 1);
  }
  swapper.kill('SIGKILL');
  await exited;
  t.comment(`loads: ${JSON.stringify(Object.fromEntries(used))}`);
  t.ok((used.get('ours') ?? 0) > 0, 'our set was read while the swaps ran (the race was on)');
  t.equal(used.get('theirs') ?? 0, 0, 'theirs never');
  t.equal(used.get('other') ?? 0, 0, 'and nothing else');
});

function root(): boolean {
  return process.getuid?.() === 0;
}

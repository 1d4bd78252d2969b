// What another user put into identity.dir while it was open to them is neither kept nor served
// (a review, as root: a 0777 identity.dir got a `gen-1` and a `current` planted by uid 65534;
// the first save made the folder 0700 and kept them, so their set became the fallback, served
// once ours expired with the CA away, and the prune's `rm -r` through their folders, swapped
// under it, deleted files elsewhere). A save refuses such a folder, naming the entry; a load
// reads only generations that are real folders of ours and set files that are not links (a link
// to a root-owned file holding someone's text, /proc/PID/cmdline, passed the owner check); and
// the generation number stays within what a load finds.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, lchown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile, copyFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { validateSvid } from '../../src/identity/svid.js';
import { DiskStore } from '../../src/identity/disk-store.js';

const ID = 'spiffe://mesh.test/svc/orders';
const root = () => process.getuid?.() === 0;

async function storeIn(t: Tap.Test): Promise<{ dir: string; base: string; store: DiskStore; lines: Array<Record<string, unknown>> }> {
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-foreign-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'identity');
  const lines: Array<Record<string, unknown>> = [];
  return { dir, base, store: new DiskStore(dir, memoryLogger(lines)), lines };
}

t.test("a save refuses a folder holding another user's entries, and keeps nothing of theirs", { skip: root() ? false : 'entries owned by another user need root (CI runs as root)' }, async (t) => {
  const [ours, theirs] = [await makePki(), await makePki()];
  const { dir, store } = await storeIn(t);
  await mkdir(dir, { mode: 0o777 });
  await chmod(dir, 0o777);
  // planted by uid 65534 while the folder was open: a generation of theirs and `current` naming it
  await mkdir(join(dir, 'gen-1'));
  const planted = await theirs.issue(ID);
  await writeFile(join(dir, 'gen-1', 'svid.crt'), planted.chainPem);
  await writeFile(join(dir, 'gen-1', 'svid.key'), planted.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'gen-1', 'bundle.pem'), theirs.bundlePem);
  await lchown(join(dir, 'gen-1'), 65534, 65534);
  await symlink('gen-1', join(dir, 'current'));
  await lchown(join(dir, 'current'), 65534, 65534);

  const svid = validateSvid(await ours.issue(ID), ID);
  await t.rejects(store.save(svid), /identity is writable by group and others \(mode 0777\) and is not empty: anyone who could write it could have put what it holds there \(root's files too, moved in\), so it is not taken over: remove what is in it \(a new SVID is requested\), then start again/, 'the save is refused');
  t.equal((await stat(dir)).mode & 0o777, 0o777, 'the folder keeps its mode: not taken over (made private, what is in it would pass as ours)');
  t.same((await readdir(dir)).sort(), ['current', 'gen-1'], "their entries are left for the operator (no rm -r through another user's folders)");
  t.equal(await store.load(ID), undefined, 'and nothing of theirs is loaded');

  // made private by the operator without looking: their entries are still named, all of them
  await chmod(dir, 0o700);
  await t.rejects(store.save(svid), /not saving the SVID in .*: .* holds (current \(uid 65534\), gen-1 \(uid 65534\)|gen-1 \(uid 65534\), current \(uid 65534\)), owned by another user than the one running meshcar \(uid 0\) or root/, "a private folder holding another user's entries: refused, naming them");
  t.equal(await store.load(ID), undefined, 'and still nothing of theirs is loaded');

  // once the operator removed them, saves go on
  await rm(join(dir, 'gen-1'), { recursive: true });
  await unlink(join(dir, 'current'));
  await store.save(svid);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'emptied: saved and loaded');
});

// root's files moved into a folder open to others (a `sudo cp` copy its owner could move): a
// start that failed after making the folder private kept them, and the next start served them
t.test("root's files in a folder open to others: a save (or a start's check) does not take the folder over", async (t) => {
  const [ours, theirs] = [await makePki(), await makePki()];
  const { dir, store } = await storeIn(t);
  await mkdir(dir);
  await chmod(dir, 0o777);
  const planted = await theirs.issue(ID);
  await writeFile(join(dir, 'svid.crt'), planted.chainPem);
  await writeFile(join(dir, 'svid.key'), planted.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), theirs.bundlePem);
  t.equal(await store.load(ID), undefined, 'a folder others may write: nothing in it loaded');
  await t.rejects(store.prepare(), /is writable by group and others \(mode 0777\) and is not empty/, "a start's check before spending a single-use token: refused");
  t.equal((await stat(dir)).mode & 0o777, 0o777, 'the folder keeps its mode');
  t.equal(await store.load(ID), undefined, 'so the next start still loads nothing from it');
  await t.rejects(store.save(validateSvid(await ours.issue(ID), ID)), /and is not empty/, 'a save is refused the same way');
});

// a process that died while taking an open folder over left it private with another user's
// entries in it, and their set (root's files they moved in) passed every later check (a re-review)
t.test("a private folder holding another user's entry: nothing in it is loaded", { skip: root() ? false : 'entries owned by another user need root (CI runs as root)' }, async (t) => {
  const theirs = await makePki();
  const { dir, store, lines } = await storeIn(t);
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o700);
  const planted = await theirs.issue(ID);
  await writeFile(join(dir, 'svid.crt'), planted.chainPem);
  await writeFile(join(dir, 'svid.key'), planted.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), theirs.bundlePem);
  await writeFile(join(dir, 'j0000001'), '');
  await lchown(join(dir, 'j0000001'), 65534, 65534);
  t.equal(await store.load(ID), undefined, "root's set beside an entry of uid 65534's: not loaded");
  t.match(lines.map((l) => String(l.msg)).join('\n'), /not using a stored SVID: .* holds j0000001 \(uid 65534\), owned by another user .*: remove what is not yours/, 'the warning names the entry');
  // many: five named, the walk left there (700,000 held every name and ran out of heap: a re-review)
  for (let i = 2; i <= 40; i++) {
    await writeFile(join(dir, `j${String(i).padStart(7, '0')}`), '');
    await lchown(join(dir, `j${String(i).padStart(7, '0')}`), 65534, 65534);
  }
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'forty of them: not loaded');
  t.match(lines.map((l) => String(l.msg)).join('\n'), /holds (j\d{7} \(uid 65534\), ){4}j\d{7} \(uid 65534\) and more, owned by another user/, 'five named, "and more"');
});

// made private in place (a chmod, then a second look), an open folder could be left 0700 with
// what another user slipped in by a process killed in between (the third re-review): an empty
// one is replaced by a new private folder now (rmdir takes only an empty folder, in one step)
/** An empty 0777 identity.dir, `beforeSave` run on its parent, a set saved: the folder's stats before and after, the set and the store. */
async function saveIntoOpenFolder(t: Tap.Test, beforeSave: (base: string) => void = () => undefined) {
  const pki = await makePki();
  const { dir, base, store } = await storeIn(t);
  await mkdir(dir);
  await chmod(dir, 0o777);
  const before = await stat(dir);
  beforeSave(base);
  const svid = validateSvid(await pki.issue(ID), ID);
  await store.save(svid);
  return { before, after: await stat(dir), svid, store };
}

t.test('an empty folder others may write is replaced by a new private one at the first save', async (t) => {
  const { before, after, svid, store } = await saveIntoOpenFolder(t);
  t.not(after.ino, before.ino, 'a new folder, not the open one made private');
  t.equal(after.mode & 0o777, 0o700, '0700');
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'and the set is in it');
});

// where it cannot be removed (a volume's root, a parent we may not write: here an immutable
// one), the open folder is made private in place, as before
t.test('an empty open folder that cannot be removed is made private in place', { skip: root() ? false : 'chattr +i needs root (CI runs as root)' }, async (t) => {
  const { before, after, svid, store } = await saveIntoOpenFolder(t, (base) => {
    execFileSync('chattr', ['+i', base]);
    t.teardown(() => execFileSync('chattr', ['-i', base]));
  });
  t.equal(after.ino, before.ino, 'the same folder (its parent is immutable: rmdir refused)');
  t.equal(after.mode & 0o777, 0o700, 'made 0700');
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'and the set is in it');
});

t.test('a first start in an empty folder others may write: nothing to warn about', async (t) => {
  const { dir, store, lines } = await storeIn(t);
  await mkdir(dir);
  await chmod(dir, 0o777);
  t.equal(await store.load(ID), undefined, 'nothing stored');
  t.same(lines.filter((l) => Number(l.level) >= 40).map((l) => l.msg), [], 'and no warning of contents that are not there');
});

t.test('a load reads no set file that is a link, and no generation that is a link to a folder elsewhere', async (t) => {
  const pki = await makePki();
  const { dir, base, store, lines } = await storeIn(t);
  const svid = validateSvid(await pki.issue(ID), ID);
  await store.save(svid);
  const generation = (await readdir(dir)).find((e) => e.startsWith('gen-')) as string;

  // a set file replaced by a link to a copy of itself (the copy: root's or ours, readable)
  const copy = join(base, 'elsewhere.key');
  await copyFile(join(dir, generation, 'svid.key'), copy);
  await unlink(join(dir, generation, 'svid.key'));
  await symlink(copy, join(dir, generation, 'svid.key'));
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'a set whose key file is a link: not used');
  t.match(lines.map((l) => String(l.msg)).join('\n'), /svid\.key is a symbolic link, which a stored set never holds/, 'the warning says why');
  await unlink(join(dir, generation, 'svid.key'));
  await copyFile(copy, join(dir, generation, 'svid.key'));
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'a plain file again: used');

  // the generation itself a link to a folder of ours elsewhere, holding a whole set
  const outside = join(base, 'outside-set');
  await rm(outside, { recursive: true, force: true });
  await mkdir(outside, { mode: 0o700 });
  for (const f of ['svid.crt', 'svid.key', 'bundle.pem']) await copyFile(join(dir, generation, f), join(outside, f));
  await rm(join(dir, generation), { recursive: true });
  await symlink(outside, join(dir, generation));
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'a generation that is a link to another folder: not read');
});

t.test('the generation number stays within what a load finds', async (t) => {
  const pki = await makePki();
  const { dir, store } = await storeIn(t);
  const svid = validateSvid(await pki.issue(ID), ID);
  await store.save(svid);
  await mkdir(join(dir, 'gen-999999999'), { mode: 0o700 });
  await t.rejects(store.save(svid), /no generation number left in .* \(gen-999999999 is there\): remove the gen-\* folders, then start again/, 'past nine digits: refused in words (gen-1000000000 was saved, and never found again)');
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'the set saved before still loads');
});

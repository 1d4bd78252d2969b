// identity.dir damaged by hand or by a copy, and what the next saves make of it (the identity
// review): `current` turned into a directory (cp -rL, rsync -L) failed every save with EISDIR
// and left a whole generation, private key included, behind each try; a save whose switch had
// happened but whose tidying failed was counted as failed and retried for good; after load()
// fell back from a broken `current`, the next save kept the broken set as its fallback and
// removed the one that worked.

import t from 'tap';
import { cp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { validateSvid } from '../../src/identity/svid.js';
import { CURRENT_LINK, DiskStore, STORE_FILES } from '../../src/identity/disk-store.js';

const ID = 'spiffe://mesh.test/svc/orders';
const generations = async (dir: string) => (await readdir(dir)).filter((e) => /^gen-\d+$/.test(e)).sort();

t.test('identity.dir damaged: saves recover, and leave nothing behind', async (t) => {
  const pki = await makePki();
  const issue = async () => validateSvid(await pki.issue(ID), ID);

  t.test('`current` made a directory by a copy: the next save moves it aside and lands', async (t) => {
    const dir = join(t.testdir(), 'identity');
    const lines: Array<Record<string, unknown>> = [];
    const store = new DiskStore(dir, memoryLogger(lines, 'debug'));
    await store.save(await issue());
    // what `cp -rL` makes of the link: a directory with the files of gen-1
    await rm(join(dir, CURRENT_LINK));
    await cp(join(dir, 'gen-1'), join(dir, CURRENT_LINK), { recursive: true });
    const next = await issue();
    await store.save(next);
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-2', '`current` is a link to the new generation again');
    t.same(await generations(dir), ['gen-1', 'gen-2'], 'no generation left behind');
    t.notOk((await readdir(dir)).some((e) => e.endsWith('.tmp')), 'the moved-aside copy is tidied away');
    t.ok(lines.some((l) => l.level === 40 && String(l.msg).includes('was not a link')), 'and it is said at warn');
    t.equal((await new DiskStore(dir, memoryLogger([])).load(ID))?.serialHex, next.serialHex, 'a restart loads the new SVID');
  });

  t.test('a save that fails before its switch removes its generation', async (t) => {
    const dir = join(t.testdir(), 'identity');
    const store = new DiskStore(dir, memoryLogger([]), { afterStep: (step) => { if (step.startsWith('made a temporary link for current')) throw new Error('no more inodes'); } });
    await t.rejects(store.save(await issue()), /no more inodes/);
    t.same(await generations(dir), [], 'no generation (no private key) left behind');
  });

  t.test('tidying that fails after the switch: the save succeeded, said at warn', async (t) => {
    const dir = join(t.testdir(), 'identity');
    const lines: Array<Record<string, unknown>> = [];
    let failPrune = false;
    const store = new DiskStore(dir, memoryLogger(lines), { afterStep: (step) => { if (failPrune && step.startsWith('removed')) throw new Error('EACCES: permission denied'); } });
    await store.save(await issue());
    await store.save(await issue());
    failPrune = true;
    const third = await issue();
    await store.save(third); // resolves: gen-3 is current
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-3');
    t.ok(lines.some((l) => l.level === 40 && String(l.msg).startsWith('the SVID is saved in gen-3, but tidying')), 'the failed tidying is a warning');
  });

  t.test('after a fallback from a broken `current`, the working set is the one kept', async (t) => {
    const dir = join(t.testdir(), 'identity');
    const lines: Array<Record<string, unknown>> = [];
    await new DiskStore(dir, memoryLogger([])).save(await issue());
    const working = await issue();
    const writer = new DiskStore(dir, memoryLogger([]));
    await writer.load(ID);
    await writer.save(working); // gen-2 current, gen-1 kept
    await writer.save(await issue()); // gen-3 current, gen-2 kept
    // gen-3 damaged: a restart serves gen-2
    await writeFile(join(dir, 'gen-3', STORE_FILES.chain), '-----BEGIN CERTIFICATE-----\ntruncated');
    const store = new DiskStore(dir, memoryLogger(lines));
    t.equal((await store.load(ID))?.serialHex, working.serialHex, 'gen-2 served');
    const renewed = await issue();
    await store.save(renewed);
    t.same(await generations(dir), ['gen-2', 'gen-4'], 'the set that worked (gen-2) is kept, the broken one (gen-3) goes');
    // the new one damaged too: the restart still has a working set
    await writeFile(join(dir, 'gen-4', STORE_FILES.chain), 'not a certificate');
    t.equal((await new DiskStore(dir, memoryLogger([])).load(ID))?.serialHex, working.serialHex, 'and falls back to it');
  });
});

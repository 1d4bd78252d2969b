// A stored SVID is served only from a folder no one else could have written: one that is
// group- or world-writable, or owned by another user, may hold a set someone planted (a leaf for
// this service under their own root, with that root as the bundle), which was served, and its
// root trusted for every peer, whenever the CA could not be reached at start. Such a folder's
// sets are passed over (a new SVID is requested) with a warning that names the fix; the next
// save makes the folder 0700 again, after which its sets are used as before.

import t from 'tap';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
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

// A stored SVID is served only from a folder no one else could have written: one that is
// group- or world-writable, or owned by another user, may hold a set someone planted (a leaf for
// this service under their own root, with that root as the bundle), which was served, and its
// root trusted for every peer, whenever the CA could not be reached at start. Such a folder's
// sets are passed over (a new SVID is requested) with a warning that names the fix; a save does
// not take such a folder over while it holds anything (its owner makes it 0700, or empties it). The folder is
// judged by path, then each file is opened again by path: so each file read is judged too, on the
// opened file itself (another user's file is not used, whatever path led to it), which a user who
// may write a folder above identity.dir and swaps in a link to their own set cannot get past.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, chown, lchown, mkdir, mkdtemp, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { validateSvid } from '../../src/identity/svid.js';
import { DiskStore } from '../../src/identity/disk-store.js';
import { mountNamespaceUnavailable } from '../helpers/mount-namespace.js';

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
    t.match(String(lines.at(-1)?.msg), new RegExp(`writable by ${who} \\(mode 0${mode.toString(8)}\\).*remove what is in it`), `mode ${mode.toString(8)}: the warning says why and what to do`);
  }
  // a save does not take it over while it holds anything (made 0700, what another user put in
  // would pass as ours): its mode stays, and the words say what to do
  await t.rejects(store.save(svid), /is writable by others \(mode 0702\) and is not empty: anyone who could write it could have put what it holds there .* so it is not taken over: remove what is in it/, 'a save refuses to take it over');
  t.equal((await stat(dir)).mode & 0o777, 0o702, 'its mode is left as it was');
  await chmod(dir, 0o700);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'made 0700 by its owner: used again');

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

t.test('a folder above identity.dir that another user may write: nothing stored is used or saved there', { skip: root() ? false : 'acting as another user needs root (CI runs as root)' }, async (t) => {
  const [ours, theirs] = [await makePki(), await makePki()];
  // a parent others may write (0777, no sticky bit): they may rename what is in it
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-swap-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'identity');
  const lines: Array<Record<string, unknown>> = [];
  const store = new DiskStore(dir, memoryLogger(lines));
  const svid = validateSvid(await ours.issue(ID), ID);
  await store.save(svid);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'under a 0700 parent: used');
  await chmod(base, 0o777);
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'under a 0777 parent: not used');
  t.match(String(lines.at(-1)?.msg), new RegExp(`${base}, a folder above it, is writable by group and others \\(mode 0777, no sticky bit\\): another user could swap it`), 'the warning names the folder above and why');
  await t.rejects(store.save(svid), new RegExp(`not saving the SVID in ${dir}: ${base}, a folder above it, is writable by group and others`), 'and nothing is saved there');
  await chmod(base, 0o1777);
  t.equal((await store.load(ID))?.serialHex, svid.serialHex, 'sticky (as /tmp), with identity/ ours: others may not rename it, used');
  await chown(base, 0, 0);
  await chmod(base, 0o775);
  // root's group may write it: passed only for a user that is not root running in group 0 (OpenShift)
  const asUserInGroup0 = spawnSync(process.execPath, ['--import', new URL('../helpers/ts-loader.mjs', import.meta.url).pathname, '--input-type=module', '-e', `
    import { judgePath } from ${JSON.stringify(new URL('../../src/path-trust.ts', import.meta.url).pathname)};
    const judged = await judgePath(process.argv[1] + '/identity', 65534);
    console.log(JSON.stringify(judged.unsafe ?? 'safe'));`, base], { uid: 65534, gid: 0, encoding: 'utf8', timeout: 20_000 });
  t.equal(asUserInGroup0.stdout.trim(), '"safe"', `uid 65534 in group 0 (OpenShift): a root:0 0775 folder above passes ${asUserInGroup0.stderr}`);
  lines.length = 0;
  t.equal(await store.load(ID), undefined, 'root itself (whom a container run as --user N shares group 0 with): not passed');
  t.match(String(lines.at(-1)?.msg), /is writable by its group \(mode 0775, no sticky bit\)/);
  await chmod(base, 0o1777);
  // in a sticky folder, a link another user made on the way to it: it chose the folder
  await symlink(dir, join(base, 'alias'));
  await lchown(join(base, 'alias'), 65534, 65534);
  lines.length = 0;
  t.equal(await new DiskStore(join(base, 'alias'), memoryLogger(lines)).load(ID), undefined, "through another user's link in a sticky folder: not used");
  t.match(String(lines.at(-1)?.msg), new RegExp(`${base}/alias is owned by uid 65534, in ${base}, which group and others may write \\(mode 1777\\)`), 'the warning names the link');
  await lchown(join(base, 'alias'), 0, 0);
  t.equal((await new DiskStore(join(base, 'alias'), memoryLogger([])).load(ID))?.serialHex, svid.serialHex, 'through a link of ours there: used');
  await rm(join(base, 'alias'));

  // what another user did under the 0777 parent: identity/ swapped for their link to a folder of
  // ours (public, 0755, with a generation and a temp file of its own); a save made it 0700, wrote
  // into it and pruned it (a re-review), a load served the set it held
  const elsewhere = join(base, 'elsewhere');
  const other = new DiskStore(elsewhere, memoryLogger([]));
  const older = validateSvid(await ours.issue(ID), ID);
  await other.save(older);
  await chmod(elsewhere, 0o755);
  await chmod(base, 0o777);
  const before = (await readdir(elsewhere)).sort();
  await rename(dir, join(base, 'moved'));
  await symlink(elsewhere, dir);
  await lchown(dir, 65534, 65534);
  t.equal(await store.load(ID), undefined, 'a link another user put in its place: the folder it names is not used');
  await t.rejects(store.save(svid), /not saving the SVID/, 'nor saved into');
  t.equal((await stat(elsewhere)).mode & 0o777, 0o755, 'which keeps its mode');
  t.same((await readdir(elsewhere)).sort(), before, 'and its files');

  // their own set, swapped in and out as fast as they can while loads run: never served
  await rm(dir);
  await rename(join(base, 'moved'), dir);
  const planted = join(base, 'planted');
  const foreign = validateSvid(await theirs.issue(ID), ID);
  const made = await mkdtemp(join(tmpdir(), 'meshcar-store-theirs-'));
  t.teardown(() => rm(made, { recursive: true, force: true }));
  await new DiskStore(join(made, 'set'), memoryLogger([])).save(foreign);
  await rename(join(made, 'set'), planted);
  await chownAll(planted);
  await symlink(planted, join(base, 'link'));
  await lchown(join(base, 'link'), 65534, 65534);
  const swapper = spawn(process.execPath, ['-e', `
    const fs = require('node:fs'); const [b] = process.argv.slice(1); const end = Date.now() + 15000;
    for (let i = 0; i < 2000000 && Date.now() < end; i++) {
      try { fs.renameSync(b + '/identity', b + '/ours'); fs.renameSync(b + '/link', b + '/identity'); } catch {}
      try { fs.renameSync(b + '/identity', b + '/link'); fs.renameSync(b + '/ours', b + '/identity'); } catch {}
    }`, base], { uid: 65534, gid: 65534, stdio: 'ignore' });
  const exited = new Promise((resolve) => swapper.once('exit', resolve));
  t.teardown(() => { swapper.kill('SIGKILL'); });
  let served = 0;
  const deadline = Date.now() + 3_000;
  for (let i = 0; i < 1_000 && Date.now() < deadline; i++) {
    if ((await store.load(ID, { quiet: true, readOnly: true })) !== undefined) served++;
  }
  swapper.kill('SIGKILL');
  await exited;
  t.equal(served, 0, 'no set is served from under that folder while another user swaps it');
});

t.test('every link on the way is judged where it lies, and a folder made by the save is judged again once made', { skip: root() ? false : 'acting as another user needs root (CI runs as root)' }, async (t) => {
  const pki = await makePki();
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-links-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const svid = validateSvid(await pki.issue(ID), ID);
  // the store, and a way to it through two links: etc/id -> shared/m -> home/svc, shared 0777
  await new DiskStore(join(base, 'home', 'svc'), memoryLogger([])).save(svid);
  for (const folder of ['etc', 'shared']) await mkdir(join(base, folder));
  await chmod(join(base, 'shared'), 0o777);
  await symlink('../home/svc', join(base, 'shared', 'm'));
  await symlink('../shared/m', join(base, 'etc', 'id'));
  const lines: Array<Record<string, unknown>> = [];
  t.equal(await new DiskStore(join(base, 'etc', 'id'), memoryLogger(lines)).load(ID), undefined, 'a link in a 0777 folder on the way, reached through another link: not used');
  t.match(String(lines.at(-1)?.msg), new RegExp(`${base}/shared, a folder above it, is writable by group and others \\(mode 0777, no sticky bit\\)`), 'the warning names that folder');
  await chmod(join(base, 'shared'), 0o755);
  t.equal((await new DiskStore(join(base, 'etc', 'id'), memoryLogger([])).load(ID))?.serialHex, svid.serialHex, 'once only we may write it: used');

  // identity.dir pub/a/id, pub sticky and a missing when judged: another user makes a (0777)
  // before the save makes it, to swap the id the save makes in it for a link to a folder of ours;
  // the save judges the folder again once made
  const pub = join(base, 'pub');
  await mkdir(pub);
  await chmod(pub, 0o1777);
  await chmod(base, 0o755);
  const victim = join(base, 'victim');
  await new DiskStore(victim, memoryLogger([])).save(svid);
  await chmod(victim, 0o755);
  const victimBefore = (await readdir(victim)).sort();
  const theirs = join(pub, 'a');
  const store = new DiskStore(join(theirs, 'id'), memoryLogger([]), {
    beforeMake: async () => {
      await mkdir(theirs);
      await chmod(theirs, 0o777);
      await chown(theirs, 65534, 65534);
    },
  });
  await t.rejects(store.save(svid), new RegExp(`not saving the SVID in ${theirs}/id: ${theirs} is owned by uid 65534, in ${pub}, which group and others may write \\(mode 1777\\)`), 'a folder another user made first, as the save made its own: refused');
  t.equal((await stat(victim)).mode & 0o777, 0o755, 'a folder of ours elsewhere keeps its mode');
  t.same((await readdir(victim)).sort(), victimBefore, 'and its files');
  await rm(theirs, { recursive: true });
  t.equal(await new DiskStore(join(theirs, 'id'), memoryLogger([]), { beforeMake: () => undefined }).save(svid), undefined, 'made by the save alone: saved');

  // identity.dir pub/b/ca/id, b missing when judged: another user makes b with a link b/ca to a
  // folder of ours elsewhere before the save makes it; a recursive mkdir made id there (review)
  const elsewhere = join(base, 'elsewhere');
  await mkdir(elsewhere, { mode: 0o755 });
  const b = join(pub, 'b');
  const linked = new DiskStore(join(b, 'ca', 'id'), memoryLogger([]), {
    beforeMake: async () => {
      await mkdir(b);
      await symlink(elsewhere, join(b, 'ca'));
      await lchown(join(b, 'ca'), 65534, 65534);
      await chown(b, 65534, 65534);
    },
  });
  await t.rejects(linked.save(svid), new RegExp(`not saving the SVID in ${b}/ca/id: ${b} is owned by uid 65534`), 'a part another user made first, holding a link: refused');
  t.same(await readdir(elsewhere), [], 'nothing was made where their link led');
});

t.test("a volume's root (a mount point) may be world-writable: a Kubernetes emptyDir", { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const pki = await makePki();
  const work = t.testdir({});
  await writeFile(join(work, 'svid.json'), JSON.stringify(await pki.issue(ID)));
  const volume = join(work, 'volume');
  await mkdir(volume);
  // in a mount namespace of its own: a tmpfs mounted as the kubelet mounts an emptyDir under fsGroup (2777)
  const script = `
    import { readFileSync } from 'node:fs';
    import { mkdir, chmod } from 'node:fs/promises';
    import pino from 'pino';
    import { DiskStore } from ${JSON.stringify(new URL('../../src/identity/disk-store.ts', import.meta.url).pathname)};
    import { validateSvid } from ${JSON.stringify(new URL('../../src/identity/svid.ts', import.meta.url).pathname)};
    const [work, volume, id] = process.argv.slice(1);
    const svid = validateSvid(JSON.parse(readFileSync(work + '/svid.json', 'utf8')), id);
    const result = {};
    const attempt = async (name, dir) => {
      const store = new DiskStore(dir, pino({ level: 'silent' }));
      try { await store.save(svid); result[name] = (await store.load(id))?.serialHex === svid.serialHex ? 'used' : 'not used'; }
      catch (err) { result[name] = 'refused: ' + err.message; }
    };
    await attempt('volume', volume + '/svid');
    // a plain world-writable folder inside it is no mount point: refused
    await mkdir(volume + '/open'); await chmod(volume + '/open', 0o777);
    await attempt('open', volume + '/open/svid');
    // but what is in it is judged as it is: another user's link there chose the way
    const { symlink, lchown } = await import('node:fs/promises');
    await symlink(volume + '/svid', volume + '/planted');
    await lchown(volume + '/planted', 65534, 65534);
    const planted = new DiskStore(volume + '/planted', pino({ level: 'silent' }));
    result.planted = (await planted.load(id)) === undefined ? 'not used' : 'used';
    result.plantedSave = await planted.save(svid).then(() => 'saved', (err) => 'refused: ' + err.message);
    console.log(JSON.stringify(result));`;
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m,mode=2777 meshcar-test-volume "$1" && exec "$0" --import "$2" --input-type=module -e "$3" "$4" "$1" "$5"', process.execPath, volume, new URL('../helpers/ts-loader.mjs', import.meta.url).pathname, script, work, ID], { timeout: 60_000, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>;
  t.equal(result.volume, 'used', 'identity.dir in a 2777 volume root: saved and used');
  t.match(result.open, /^refused: not saving the SVID in .*open\/svid: .*open, a folder above it, is writable by group and others \(mode 0777, no sticky bit\)/, 'a 0777 folder that is not a mount point: refused');
  t.equal(result.planted, 'not used', "another user's link in the volume's root: not used");
  t.match(result.plantedSave, /^refused: not saving the SVID in .*planted: .*planted is owned by uid 65534, in .*volume, which group and others may write \(mode 2777\)/, 'nor saved through');
});

// A bind mount of an ordinary folder is a mount point too, but that folder is still reached by
// its own path, where anyone may rename its entries: it passed as a volume's root, and a local
// user swapped the identity folder through the other path (a review). Only a file system reached
// through this mount alone passes.
t.test('a bind mount of a world-writable folder reached by another path is not a volume root', { skip: mountNamespaceUnavailable() ?? false }, async (t) => {
  const pki = await makePki();
  const work = t.testdir({});
  await writeFile(join(work, 'svid.json'), JSON.stringify(await pki.issue(ID)));
  // the folder on a file system of its own (a tmpfs), as /dev/shm is: its bind is another device than its parent's
  const disk = join(work, 'disk');
  const bound = join(work, 'bound');
  // and the same bind moved on top of a private tmpfs (mount --move): listed before it in
  // mountinfo, the last one listed there was taken for the one seen (a re-review)
  const stacked = join(work, 'stacked');
  const staging = join(work, 'staging');
  for (const folder of [disk, bound, stacked, staging]) await mkdir(folder);
  const script = `
    import { readFileSync } from 'node:fs';
    import pino from 'pino';
    import { DiskStore } from ${JSON.stringify(new URL('../../src/identity/disk-store.ts', import.meta.url).pathname)};
    import { validateSvid } from ${JSON.stringify(new URL('../../src/identity/svid.ts', import.meta.url).pathname)};
    const [work, id, ...places] = process.argv.slice(1);
    const svid = validateSvid(JSON.parse(readFileSync(work + '/svid.json', 'utf8')), id);
    const result = {};
    for (const place of places) result[place] = await new DiskStore(place + '/svid', pino({ level: 'silent' })).save(svid).then(() => 'saved', (err) => 'refused: ' + err.message);
    console.log(JSON.stringify(result));`;
  const mounts = [
    'mount -t tmpfs -o size=1m meshcar-test-disk "$1" && mkdir -m 777 "$1/shared" && mount --bind "$1/shared" "$2"',
    // the bind made first, so that its mount id is the lower one
    'mount --bind "$1/shared" "$4" && mount -t tmpfs -o size=1m,mode=777 meshcar-test-private "$3" && mount --move "$4" "$3"',
  ].join(' && ');
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${mounts} && exec "$0" --import "$5" --input-type=module -e "$6" "$7" "$8" "$2" "$3"`, process.execPath, disk, bound, stacked, staging, new URL('../helpers/ts-loader.mjs', import.meta.url).pathname, script, work, ID], { timeout: 60_000, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>;
  for (const [place, how] of [[bound, 'a bind'], [stacked, 'a bind moved on top of a private tmpfs']] as const) {
    t.match(result[place], new RegExp(`^refused: not saving the SVID in ${place}/svid: ${place}, a folder above it, is writable by group and others \\(mode 0777, no sticky bit\\)`), `${how}: refused, as the folder itself is by its own path`);
  }
});

async function chownAll(folder: string): Promise<void> {
  await chown(folder, 65534, 65534);
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const full = join(folder, entry.name);
    if (entry.isDirectory()) await chownAll(full);
    else await lchown(full, 65534, 65534);
  }
}

function root(): boolean {
  return process.getuid?.() === 0;
}

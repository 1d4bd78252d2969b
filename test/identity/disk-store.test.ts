// The SVID store's layout and its choices on load: generation directories behind one
// `current` link, private modes, links at the old names, fallback to the previous set, and the
// plain files of older versions and `meshcar ca issue --out` read and migrated.
// Crashes in the middle of a save: disk-store-crash.test.ts.

import t from 'tap';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { initCaDirectory } from '../../src/ca/store.js';
import { caIssue } from '../../src/ca/commands.js';
import { validateSvid } from '../../src/identity/svid.js';
import { CURRENT_LINK, DiskStore, STORE_FILES } from '../../src/identity/disk-store.js';

const ID = 'spiffe://mesh.test/svc/orders';
const logger = pino({ level: 'silent' });
const FLAT = Object.values(STORE_FILES);

t.test('disk store', async (t) => {
  const pki = await makePki();
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const issue = async (options: { lifetimeMs?: number } = {}) => validateSvid(await pki.issue(ID, options), ID);

  t.test('generations behind one link, with private permissions', async (t) => {
    const dir = join(base, 'a', 'identity'); // created, parents included
    const store = new DiskStore(dir, logger);
    t.equal(await store.load(ID), undefined, 'nothing stored yet');
    const svid = await issue();
    await store.save(svid);
    t.equal((await stat(dir)).mode & 0o777, 0o700, 'directory 0700');
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-1');
    t.equal((await stat(join(dir, 'gen-1'))).mode & 0o777, 0o700, 'generation 0700');
    t.equal((await stat(join(dir, 'gen-1', STORE_FILES.key))).mode & 0o777, 0o600, 'key 0600');
    t.equal((await stat(join(dir, 'gen-1', STORE_FILES.chain))).mode & 0o777, 0o644, 'chain 0644');
    t.same((await readdir(dir)).sort(), [...FLAT, CURRENT_LINK, 'gen-1'].sort(), 'no temp files left behind');
    t.same((await readdir(join(dir, 'gen-1'))).sort(), [...FLAT].sort());

    // the old names still work for people and tools (curl --cert DIR/svid.crt --key DIR/svid.key)
    for (const name of FLAT) t.equal(await readlink(join(dir, name)), `${CURRENT_LINK}/${name}`, `${name} links into current`);
    t.equal(await readFile(join(dir, STORE_FILES.key), 'utf8'), svid.privateKeyPem);
    t.equal(await readFile(join(dir, STORE_FILES.chain), 'utf8'), svid.chainPem);

    const loaded = await store.load(ID);
    t.equal(loaded?.serialHex, svid.serialHex);
    t.equal(loaded?.privateKeyPem, svid.privateKeyPem);
    t.equal(loaded?.chainPem, svid.chainPem);
    t.equal(loaded?.bundlePem, svid.bundlePem);

    // each save is a new generation; the previous one stays, older ones go
    const second = await issue();
    await store.save(second);
    const third = await issue();
    await store.save(third);
    t.same((await readdir(dir)).sort(), [...FLAT, CURRENT_LINK, 'gen-2', 'gen-3'].sort(), 'current and previous kept');
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-3');
    t.equal((await store.load(ID))?.serialHex, third.serialHex);
    t.equal(await readFile(join(dir, STORE_FILES.chain), 'utf8'), third.chainPem, 'the links follow current');
  });

  t.test('a broken current set falls back to the previous one', async (t) => {
    const dir = join(base, 'fallback');
    const lines: Array<Record<string, unknown>> = [];
    const store = new DiskStore(dir, memoryLogger(lines));
    const previous = await issue();
    await store.save(previous);
    await store.save(await issue());

    // a key that does not match the certificate
    await writeFile(join(dir, 'gen-2', STORE_FILES.key), (await pki.issue(ID)).privateKeyPem);
    t.equal((await store.load(ID))?.serialHex, previous.serialHex, 'mismatched key: the previous set');
    t.match(lines.at(-1), { level: 40, using: 'gen-1', msg: /refused gen-2: the private key does not match/ }, 'says what it refused');

    // a missing file
    await unlink(join(dir, 'gen-2', STORE_FILES.bundle));
    t.equal((await store.load(ID))?.serialHex, previous.serialHex, 'incomplete: the previous set');

    // current gone (a crash before the first switch cannot do this, a person can)
    await unlink(join(dir, CURRENT_LINK));
    t.equal((await store.load(ID))?.serialHex, previous.serialHex, 'no current link: the newest complete generation');

    // nothing complete left
    await unlink(join(dir, 'gen-1', STORE_FILES.chain));
    t.equal(await store.load(ID), undefined, 'no complete set: nothing');
    t.match(lines.at(-1), { level: 40, msg: /no usable stored SVID, requesting a new one: gen-2: .*; gen-1: / });

    // the next save starts clean
    const next = await issue();
    await store.save(next);
    t.equal((await store.load(ID))?.serialHex, next.serialHex);
  });

  t.test('current never leads outside the directory', async (t) => {
    const dir = join(base, 'escape');
    const store = new DiskStore(dir, logger);
    await store.save(await issue());
    const elsewhere = join(base, 'elsewhere');
    await new DiskStore(elsewhere, logger).save(await issue());
    await unlink(join(dir, CURRENT_LINK));
    await symlink(join(elsewhere, 'gen-1'), join(dir, CURRENT_LINK));
    await rm(join(dir, 'gen-1'), { recursive: true });
    t.equal(await store.load(ID), undefined, 'a link to another directory is not followed');
  });

  t.test('the plain files of older versions and `meshcar ca issue --out`', async (t) => {
    const caDir = join(base, 'ca');
    await initCaDirectory(caDir, 'mesh.test', { force: false });
    const dir = join(base, 'flat');
    await caIssue(caDir, 'orders', dir, 3_600_000);
    const issuedKey = await readFile(join(dir, STORE_FILES.key), 'utf8');

    const lines: Array<Record<string, unknown>> = [];
    const store = new DiskStore(dir, memoryLogger(lines));
    const loaded = await store.load(ID);
    t.equal(loaded?.privateKeyPem, issuedKey, 'read as they are');
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-1', 'migrated into a generation');
    for (const name of FLAT) t.ok((await lstat(join(dir, name))).isSymbolicLink(), `${name} is a link now`);
    t.equal(await readFile(join(dir, STORE_FILES.key), 'utf8'), issuedKey, 'same content through the link');
    t.equal((await stat(join(dir, 'gen-1', STORE_FILES.key))).mode & 0o777, 0o600);
    t.ok(lines.some((l) => /moved the stored SVID into current/.test(String(l.msg))), 'says so once');
    t.equal((await store.load(ID))?.serialHex, loaded?.serialHex, 'and loads from the generation next time');

    // `ca issue --out` again over the store: its rename replaces the links with plain files,
    // which are newer than any generation and win
    await caIssue(caDir, 'orders', dir, 3_600_000);
    const reissuedKey = await readFile(join(dir, STORE_FILES.key), 'utf8');
    t.not(reissuedKey, issuedKey);
    t.equal((await store.load(ID))?.privateKeyPem, reissuedKey, 'the reissued SVID is used');
    t.equal(await readlink(join(dir, CURRENT_LINK)), 'gen-2');

    // a writer that stopped part way (here: only the bundle replaced) is not trusted over
    // current, even where the mix would validate
    const currentBundle = await readFile(join(dir, STORE_FILES.bundle), 'utf8');
    await unlink(join(dir, STORE_FILES.bundle));
    await writeFile(join(dir, STORE_FILES.bundle), currentBundle + pki.bundlePem);
    const partly = await store.load(ID);
    t.equal(partly?.privateKeyPem, reissuedKey);
    t.equal(partly?.bundlePem, currentBundle, 'one plain file among links: current wins');

    // plain files that do not hold together fall back to current
    for (const name of FLAT) {
      const content = await readFile(join(dir, name), 'utf8');
      await unlink(join(dir, name));
      await writeFile(join(dir, name), content, { mode: 0o600 });
    }
    t.equal((await store.load(ID))?.privateKeyPem, reissuedKey, 'mismatched plain set: current wins');
  });

  t.test('what is not reused', async (t) => {
    const dir = join(base, 'b');
    const store = new DiskStore(dir, logger);
    await store.save(await issue());
    t.equal(await store.load('spiffe://mesh.test/svc/payments'), undefined, 'another identity');

    const shortStore = new DiskStore(join(base, 'short'), logger);
    const short = await issue({ lifetimeMs: 10_000 });
    await shortStore.save(short);
    t.ok(await shortStore.load(ID), 'valid and most of its life left');
    t.equal(await shortStore.load(ID, { now: new Date(short.notAfter.getTime() - 500) }), undefined, 'almost expired');
    t.equal(await shortStore.load(ID, { now: new Date(short.notAfter.getTime() + 1000) }), undefined, 'expired');
  });
});

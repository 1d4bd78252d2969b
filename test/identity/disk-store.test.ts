import t from 'tap';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makePki } from '../helpers/pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { DiskStore, STORE_FILES } from '../../src/identity/disk-store.js';

const ID = 'spiffe://mesh.test/svc/orders';
const logger = pino({ level: 'silent' });

t.test('disk store', async (t) => {
  const pki = await makePki();
  const base = await mkdtemp(join(tmpdir(), 'meshcar-store-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));

  t.test('round trip with private permissions', async (t) => {
    const dir = join(base, 'a', 'identity'); // created, parents included
    const store = new DiskStore(dir, logger);
    t.equal(await store.load(ID), undefined, 'nothing stored yet');
    const svid = validateSvid(await pki.issue(ID), ID);
    await store.save(svid);
    t.equal((await stat(dir)).mode & 0o777, 0o700, 'directory 0700');
    t.equal((await stat(join(dir, STORE_FILES.key))).mode & 0o777, 0o600, 'key 0600');
    t.equal(await readFile(join(dir, STORE_FILES.key), 'utf8'), svid.privateKeyPem);
    t.same((await readdir(dir)).sort(), Object.values(STORE_FILES).sort(), 'no temp files left behind');

    const loaded = await store.load(ID);
    t.equal(loaded?.serialHex, svid.serialHex);
    t.equal(loaded?.chainPem, svid.chainPem);
    t.equal(loaded?.bundlePem, svid.bundlePem);

    // a second save replaces the files in place
    const next = validateSvid(await pki.issue(ID), ID);
    await store.save(next);
    t.equal((await store.load(ID))?.serialHex, next.serialHex);
    t.equal((await stat(join(dir, STORE_FILES.key))).mode & 0o777, 0o600, 'still 0600 after replacement');
  });

  t.test('what is not reused', async (t) => {
    const dir = join(base, 'b');
    const store = new DiskStore(dir, logger);
    await store.save(validateSvid(await pki.issue(ID), ID));
    t.equal(await store.load('spiffe://mesh.test/svc/payments'), undefined, 'another identity');

    const other = await pki.issue(ID);
    await writeFile(join(dir, STORE_FILES.key), other.privateKeyPem);
    t.equal(await store.load(ID), undefined, 'a key that does not match the certificate');

    const short = validateSvid(await pki.issue(ID, { lifetimeMs: 10_000 }), ID);
    await store.save(short);
    t.ok(await store.load(ID), 'valid and most of its life left');
    t.equal(await store.load(ID, { now: new Date(short.notAfter.getTime() - 500) }), undefined, 'almost expired');
    t.equal(await store.load(ID, { now: new Date(short.notAfter.getTime() + 1000) }), undefined, 'expired');
  });
});

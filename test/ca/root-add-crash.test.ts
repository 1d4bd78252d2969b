// `root add` killed at any of its file writes leaves a CA that still starts and signs leaves
// that verify under the bundle it hands out, and running it again finishes the step: one
// pending root whose key is on disk, in bundle.pem beside the active root, with a cross
// certificate for it, and state.json saying "added"; the rotation then goes through activate
// and retire to a CA whose issuer is under the new root. Nothing the killed run wrote is
// recorded in state.json, so the second run makes its pending root afresh (the first one never
// signed anything and its key is written over). The crash is a real SIGKILL of a child process.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';
import { loadCaMaterial } from '../../src/ca/store.js';
import { readCaState } from '../../src/ca/ca-state.js';
import { splitPemCertificates } from '../../src/pki/pem.js';
import { makeCaDir } from '../helpers/ca.js';
import { runStepKilledAt, signFromCrashedFolder } from '../helpers/ca-crash.js';

const cert = async (dir: string, file: string) => new X509Certificate(await readFile(join(dir, file), 'utf8'));
const bundleSerials = async (dir: string) => splitPemCertificates(await readFile(join(dir, 'bundle.pem'), 'utf8')).map((pem) => new X509Certificate(pem).serialNumber);

// every file the step writes, in order (it removes none)
const CRASH_POINTS = ['root-pending.key', 'root-pending.crt', 'cross.crt', 'bundle.pem', 'state.json'];

// each case is its own CA folder and child process
t.jobs = 2;

for (const point of CRASH_POINTS) {
  t.test(`killed at ${point}: the CA serves, and a second run finishes the step`, async (t) => {
    const dir = await makeCaDir();
    const oldRoot = await cert(dir, 'root.crt');
    t.equal(await runStepKilledAt(dir, 'add', point), 'SIGKILL', `killed at ${point}`);
    const served = await signFromCrashedFolder(dir);
    t.equal(served.status, 200, 'a CA server on the folder signs');
    t.ok(served.verifies, 'a leaf that verifies under the bundle it hands out');
    t.ok(served.bundleSerials.includes(oldRoot.serialNumber), 'which holds the active root');

    await rootAdd(dir);
    const pending = await cert(dir, 'root-pending.crt');
    t.ok(pending.checkPrivateKey(createPrivateKey(await readFile(join(dir, 'root-pending.key'), 'utf8'))), 'the pending root\'s key is on disk');
    t.equal((await cert(dir, 'root.crt')).serialNumber, oldRoot.serialNumber, 'the old root is still active');
    t.same(await bundleSerials(dir), [oldRoot.serialNumber, pending.serialNumber], 'bundle.pem: the active root and the pending one');
    const cross = await cert(dir, 'cross.crt');
    t.ok(cross.publicKey.equals(pending.publicKey) && cross.verify(oldRoot.publicKey), 'cross.crt: the pending root\'s key signed by the old root');
    t.equal((await readCaState(dir)).rootRotation?.step, 'added', 'state: added');
    const material = await loadCaMaterial(dir, 'mesh.local');
    t.ok(material.issuerCert.verify(oldRoot.publicKey), 'the old root\'s issuer signs on');

    // the pending root carries the rest of the rotation: its key signs the new issuer
    await rootActivate(dir, { force: true });
    await rootRetire(dir, { force: true });
    t.same(await bundleSerials(dir), [pending.serialNumber], 'after activate and retire, bundle.pem holds the root added');
    t.ok((await loadCaMaterial(dir, 'mesh.local')).issuerCert.verify(pending.publicKey), 'and the issuer is under it');
  });
}

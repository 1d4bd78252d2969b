// `root activate` killed at any of its file writes leaves a CA that still serves, and running
// it again finishes the step: the new root active, the old one kept as retiring, the token
// key rotated once (tokens made before keep working until `root retire`). A crash after the
// new root became root.crt used to make the next run write the new root as the retiring one
// (which `root retire` would then drop from the bundle), and one after the pending files were
// removed left a step that could not be finished. The crash is a real SIGKILL of a child
// process at each rename or removal.

import t from 'tap';
import { readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { rootActivate, rootAdd } from '../../src/ca/lifecycle.js';
import { loadCaMaterial } from '../../src/ca/store.js';
import { readCaState } from '../../src/ca/ca-state.js';
import { makeCaDir } from '../helpers/ca.js';
import { runStepKilledAt } from '../helpers/ca-crash.js';

const serialIn = async (dir: string, file: string) => new X509Certificate(await readFile(join(dir, file), 'utf8')).serialNumber;
const tokenKeys = async (dir: string) => (JSON.parse(await readFile(join(dir, 'token-keys.json'), 'utf8')) as { keys: Array<{ kid: string; state: string }>; retired: string[] });
const exists = (path: string) => access(path).then(() => true, () => false);

// every file the step writes or removes, in order
const CRASH_POINTS = ['root-retiring.crt', 'issuer.key', 'issuer.crt', 'root.key', 'root.crt', 'root-pending.key', 'root-pending.crt', 'token.key', 'token-keys.json', 'state.json'];

for (const point of CRASH_POINTS) {
  t.test(`killed at ${point}: the CA serves, and a second run finishes the step`, async (t) => {
    const dir = await makeCaDir();
    const oldRoot = await serialIn(dir, 'root.crt');
    const tokenKid = (await tokenKeys(dir)).keys.find((k) => k.state === 'current')?.kid;
    await rootAdd(dir);
    const newRoot = await serialIn(dir, 'root-pending.crt');
    t.equal(await runStepKilledAt(dir, 'activate', point), 'SIGKILL', `killed at ${point}`);
    await t.resolves(loadCaMaterial(dir, 'mesh.local'), 'the CA can load its signing material');
    await rootActivate(dir, { force: true });
    t.equal(await serialIn(dir, 'root.crt'), newRoot, 'the new root is active');
    t.equal(await serialIn(dir, 'root-retiring.crt'), oldRoot, 'the old root is the retiring one');
    t.equal((await readCaState(dir)).rootRotation?.step, 'activated', 'state: activated');
    t.notOk(await exists(join(dir, 'root-pending.key')), 'no pending key left');
    const material = await loadCaMaterial(dir, 'mesh.local');
    t.equal(material.issuerCert.issuer, new X509Certificate(await readFile(join(dir, 'root.crt'), 'utf8')).subject, 'the issuer is under the new root');
    const keys = await tokenKeys(dir);
    t.equal(keys.keys.find((k) => k.state === 'previous')?.kid, tokenKid, 'the token key was rotated once: the one before is still accepted');
    t.notOk(keys.retired.includes(tokenKid as string), 'and not retired');
  });
}

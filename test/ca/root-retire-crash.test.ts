// `root retire` killed at any of its file writes and removals leaves a CA that still starts and
// signs leaves that verify under the bundle it hands out, and running it again finishes the
// step: bundle.pem holds the new root alone, root-retiring.crt and cross.crt are gone, the
// archived issuers of the old root are pruned while those of the new root stay, the token
// keys from before activation are retired, and state.json has no rotation. A run stopped after
// root-retiring.crt was removed used to leave the old root's issuers in issuers/ for good (the
// second run no longer knew which root was retired), listed by `ca status` until they expired.
// The crash is a real SIGKILL of a child process.

import t from 'tap';
import { access, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { rootActivate, rootAdd, rootRetire, rotateIssuer } from '../../src/ca/lifecycle.js';
import { loadCaMaterial } from '../../src/ca/store.js';
import { readCaState } from '../../src/ca/ca-state.js';
import { splitPemCertificates } from '../../src/pki/pem.js';
import { makeCaDir } from '../helpers/ca.js';
import { runStepKilledAt, signFromCrashedFolder } from '../helpers/ca-crash.js';

const cert = async (dir: string, file: string) => new X509Certificate(await readFile(join(dir, file), 'utf8'));
const serial = async (dir: string, file: string) => (await cert(dir, file)).serialNumber.toLowerCase();
const archived = async (dir: string) => (await readdir(join(dir, 'issuers'))).sort();
const tokenKeys = async (dir: string) => JSON.parse(await readFile(join(dir, 'token-keys.json'), 'utf8')) as { keys: Array<{ kid: string; state: string }>; retired: string[] };
const exists = (path: string) => access(path).then(() => true, () => false);

interface Rotation {
  readonly dir: string;
  readonly oldRoot: X509Certificate;
  readonly newRoot: X509Certificate;
  /** Archived issuer files under the old root (two: before add, and the one activate replaced), then one under the new root. */
  readonly oldIssuers: readonly string[];
  readonly newIssuer: string;
  readonly previousKid: string;
}

/** A CA just before retire: issuers archived under both roots, the token key rotated once. */
async function activated(): Promise<Rotation> {
  const dir = await makeCaDir();
  const oldRoot = await cert(dir, 'root.crt');
  await rotateIssuer(dir);
  const first = `${await serial(dir, 'issuer.crt')}.crt`;
  await rootAdd(dir);
  await rootActivate(dir, { force: true });
  const newIssuer = `${await serial(dir, 'issuer.crt')}.crt`;
  await rotateIssuer(dir);
  const oldIssuers = (await archived(dir)).filter((f) => f !== newIssuer);
  if (oldIssuers.length !== 2 || !oldIssuers.includes(first)) throw new Error(`unexpected archive ${oldIssuers.join(' ')}`);
  const previousKid = (await tokenKeys(dir)).keys.find((k) => k.state === 'previous')?.kid ?? '';
  return { dir, oldRoot, newRoot: await cert(dir, 'root.crt'), oldIssuers, newIssuer, previousKid };
}

// every file the step writes or removes (the two archived issuers of the old root by name)
const CRASH_POINTS: ReadonlyArray<[string, (r: Rotation) => string]> = [
  ['bundle.pem', () => 'bundle.pem'],
  ['root-retiring.crt', () => 'root-retiring.crt'],
  ['cross.crt', () => 'cross.crt'],
  ['the first old issuer', (r) => `issuers/${r.oldIssuers[0]}`],
  ['the second old issuer', (r) => `issuers/${r.oldIssuers[1]}`],
  ['token-keys.json', () => 'token-keys.json'],
  ['state.json', () => 'state.json'],
];

t.jobs = 2;

for (const [name, file] of CRASH_POINTS) {
  t.test(`killed at ${name}: the CA serves, and a second run finishes the step`, async (t) => {
    const r = await activated();
    const { dir } = r;
    t.equal(await runStepKilledAt(dir, 'retire', file(r)), 'SIGKILL', `killed at ${name}`);
    const served = await signFromCrashedFolder(dir);
    t.equal(served.status, 200, 'a CA server on the folder signs');
    t.ok(served.verifies, 'a leaf that verifies under the bundle it hands out');
    t.ok(served.bundleSerials.includes(r.newRoot.serialNumber), 'which holds the new root');

    const { summary } = await rootRetire(dir, { force: true });
    // removed last of the files: only a run stopped at state.json leaves the root unnamed
    if (name !== 'state.json') t.match(summary, `retired root serial ${r.oldRoot.serialNumber.toLowerCase()}:`, 'the second run names the root it retires');
    t.same(splitPemCertificates(await readFile(join(dir, 'bundle.pem'), 'utf8')).map((pem) => new X509Certificate(pem).serialNumber), [r.newRoot.serialNumber], 'bundle.pem: the new root alone');
    t.notOk(await exists(join(dir, 'root-retiring.crt')), 'root-retiring.crt is gone');
    t.notOk(await exists(join(dir, 'cross.crt')), 'cross.crt is gone');
    t.same(await archived(dir), [r.newIssuer], 'issuers/: the old root\'s issuers pruned, the new root\'s kept');
    const keys = await tokenKeys(dir);
    t.same(keys.keys.map((k) => k.state), ['current'], 'one token key left');
    t.ok(keys.retired.includes(r.previousKid), 'the one from before activation retired');
    const state = await readCaState(dir);
    t.equal(state.rootRotation, undefined, 'state: no rotation under way');
    t.ok(state.rootRetiredAt, 'and the retirement recorded');
    t.ok((await loadCaMaterial(dir, 'mesh.local')).issuerCert.verify(r.newRoot.publicKey), 'the issuer is under the new root');
    await t.resolves(rootAdd(dir), 'the next rotation can start');
  });
}

t.test('a folder left by an earlier version stopped after root-retiring.crt was removed: the next run prunes', async (t) => {
  const r = await activated();
  // what that version had done: the bundle written, root-retiring.crt and cross.crt removed
  await writeFile(join(r.dir, 'bundle.pem'), r.newRoot.toString());
  await rm(join(r.dir, 'root-retiring.crt'));
  await rm(join(r.dir, 'cross.crt'));
  await rootRetire(r.dir, { force: true });
  t.same(await archived(r.dir), [r.newIssuer], 'issuers/: the old root\'s issuers pruned, the new root\'s kept');
  t.equal((await readCaState(r.dir)).rootRotation, undefined, 'state: no rotation under way');
});

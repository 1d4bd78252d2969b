// The CA's init container (config/kubernetes/base/ca.yaml), its shell script run for real with
// /bin/sh and the built CLI as `meshcar`, the pod's paths moved into a temp folder: it makes a CA
// in an empty folder, leaves a finished one alone, and refuses to make a new one in an empty
// folder while the mesh's bundle ConfigMap exists (a lost claim: a new root no sidecar trusts,
// every renewal in the mesh failing within a day; Kubernetes review, HIGH).

import t from 'tap';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCaInitContainer } from '../helpers/ca-init-container.js';

/** The init container with the pod's paths under `root`: root/data/ca, root/bundle (the ConfigMap's mount). */
function runInit(root: string): Promise<{ code: number; stderr: string }> {
  return runCaInitContainer(join(root, 'data', 'ca'), join(root, 'bundle'), join(root, 'bin'));
}

t.test('an empty claim and no bundle ConfigMap (the install): a CA is made, its folder 0700', async (t) => {
  const root = t.testdir({ data: {} });
  const run = await runInit(root);
  t.equal(run.code, 0, run.stderr);
  t.ok((await readdir(join(root, 'data', 'ca'))).includes('issuer.key'), 'the CA is made');
});

t.test('a finished CA and the bundle ConfigMap: left alone', async (t) => {
  const root = t.testdir({ data: {} });
  t.equal((await runInit(root)).code, 0);
  const bundle = await readFile(join(root, 'data', 'ca', 'bundle.pem'), 'utf8');
  await mkdir(join(root, 'bundle'));
  await writeFile(join(root, 'bundle', 'bundle.pem'), bundle);
  const run = await runInit(root);
  t.equal(run.code, 0, run.stderr);
  t.equal(await readFile(join(root, 'data', 'ca', 'bundle.pem'), 'utf8'), bundle, 'the same roots');
});

t.test('an empty claim while the bundle ConfigMap exists (the CA was lost): refused, nothing made, and it says why', async (t) => {
  const root = t.testdir({ data: {}, bundle: { 'bundle.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } });
  const run = await runInit(root);
  t.equal(run.code, 1, 'the init container fails: the pod does not start');
  t.match(run.stderr, /holds no CA, but the ConfigMap meshcar-ca-bundle exists.*Restore the folder from a backup, or delete the ConfigMap to start a new mesh/);
  t.same(await readdir(join(root, 'data')), [], 'no new CA');
});

t.test('a claim without its ca folder while the bundle ConfigMap exists: refused the same way', async (t) => {
  const root = t.testdir({ data: {}, bundle: { 'bundle.pem': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } });
  await rm(join(root, 'data'), { recursive: true });
  await mkdir(join(root, 'data'));
  const run = await runInit(root);
  t.equal(run.code, 1);
  t.match(run.stderr, /holds no CA, but the ConfigMap meshcar-ca-bundle exists/);
});

// the guard once took any folder without issuer.key for a lost CA (re-review): a folder holding
// the rest of one is ca init's to judge, which names what is missing
t.test('part of a CA left (its issuer key lost) and the bundle ConfigMap: ca init refuses it, naming the missing file', async (t) => {
  const root = t.testdir({ data: {} });
  t.equal((await runInit(root)).code, 0);
  await mkdir(join(root, 'bundle'));
  await writeFile(join(root, 'bundle', 'bundle.pem'), await readFile(join(root, 'data', 'ca', 'bundle.pem')));
  await rm(join(root, 'data', 'ca', 'issuer.key'));
  const run = await runInit(root);
  t.equal(run.code, 1, 'the init container fails');
  t.match(run.stderr, /holds part of a CA \(.*missing issuer\.key\)/, run.stderr);
  t.notMatch(run.stderr, /holds no CA/);
});

// every ca command, init too, refuses a CA folder whose files others can read or write: a kill
// before the kubelet's fsGroup pass was undone (it gives the group read and write on everything
// of a volume whose root did not match) left init refused and the CA crash-looping (a re-review)
t.test('an init killed midway, its files then opened to the group by an fsGroup pass: the init container finishes it', async (t) => {
  const root = t.testdir({ data: {} });
  t.equal((await runInit(root)).code, 0);
  const ca = join(root, 'data', 'ca');
  await writeFile(join(ca, 'state.json'), `${JSON.stringify({ initializing: { since: new Date().toISOString(), trustDomain: 'mesh.local' }, generation: 1 })}\n`);
  for (const name of await readdir(ca)) await chmod(join(ca, name), 0o660);
  await chmod(ca, 0o770);
  const run = await runInit(root);
  t.equal(run.code, 0, `the init container succeeds (${run.stderr.trim()})`);
  t.equal((await stat(join(ca, 'root.key'))).mode & 0o777, 0o600, 'its keys are 0600');
  t.equal((await stat(ca)).mode & 0o777, 0o700, 'its folder 0700');
  t.notMatch(await readFile(join(ca, 'state.json'), 'utf8'), /initializing/, 'the init finished');
});

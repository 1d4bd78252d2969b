// A crash while `ca rotate-issuer` (or `root activate`, or a server's own issuerRotation)
// replaces the issuer's key and certificate leaves a CA that starts: killed before the key's
// rename, the old pair signs on; killed between the key's and the certificate's, the next load
// finishes the switch and the new pair signs. Such a crash used to leave the new key beside the
// old certificate, and every command and `ca serve` refused the folder ("issuer.key does not
// belong to issuer.crt"). The crash is a real SIGKILL of a child process at that rename.

import t from 'tap';
import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { loadCaMaterial } from '../../src/ca/store.js';
import { callCa, makeCaDir, runCli, startTestCa } from '../helpers/ca.js';
import { waitFor } from '../helpers/mesh.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { runStepKilledAt } from '../helpers/ca-crash.js';

const serialOf = async (dir: string) => new X509Certificate(await readFile(join(dir, 'issuer.crt'), 'utf8')).serialNumber;

t.test('killed between the key and the certificate: the next load finishes the switch', async (t) => {
  const dir = await makeCaDir();
  const before = await serialOf(dir);
  t.equal(await runStepKilledAt(dir, 'rotate-issuer', 'issuer.crt'), 'SIGKILL', 'the rotation was killed at the rename of issuer.crt');
  const material = await loadCaMaterial(dir, 'mesh.local');
  t.not(material.issuerCert.serialNumber, before, 'the new issuer signs');
  t.ok(material.issuerCert.checkPrivateKey(material.issuer.key), 'with its own key');
  t.equal(await serialOf(dir), material.issuerCert.serialNumber, 'issuer.crt on disk is the new one');
  const again = await loadCaMaterial(dir, 'mesh.local');
  t.equal(again.issuerCert.serialNumber, material.issuerCert.serialNumber, 'and loads as it is from then on');
});

t.test('killed between the renames: ca status and check read the switch as it will finish, and write nothing', async (t) => {
  const dir = await makeCaDir();
  t.equal(await runStepKilledAt(dir, 'rotate-issuer', 'issuer.crt'), 'SIGKILL', 'the rotation was killed at the rename of issuer.crt');
  const files = async () => Object.fromEntries(await Promise.all((await readdir(dir)).sort().map(async (name) => [name, await readFile(join(dir, name), 'utf8').catch(() => 'a folder')])));
  const before = await files();
  t.ok('issuer.next.crt' in before, 'the staged certificate is there');
  // no CA lock is held by either: a status beside a rotation's second rename must not do it too
  const status = await runCli(['ca', 'status', '--dir', dir, '--json']);
  t.equal(status.code, 0, status.stderr);
  t.equal((JSON.parse(status.stdout) as { issuers: Array<{ serial: string }> }).issuers[0]?.serial, new X509Certificate(before['issuer.next.crt'] as string).serialNumber.toLowerCase(), 'status shows the issuer the switch finishes with');
  await writeFile(join(dir, '..', 'ca.yaml'), `trustDomain: mesh.local\ndir: ${dir}\nlisten: 127.0.0.1:8443\n`);
  const check = await runCli(['check', '--config', join(dir, '..', 'ca.yaml')]);
  t.equal(check.code, 0, check.stderr);
  t.same(await files(), before, 'nothing in the folder changed');
});

t.test("a running CA whose folder shows a crashed switch while another command holds its lock answers at once, from what it runs", async (t) => {
  const dir = await makeCaDir();
  const ca = await startTestCa({}, dir);
  t.teardown(() => ca.close());
  const bundle = await readFile(join(dir, 'bundle.pem'), 'utf8');
  t.equal((await callCa(ca.server.url, { path: '/v1/bundle', ca: bundle })).status, 200, 'serving');
  t.equal(await runStepKilledAt(dir, 'rotate-issuer', 'issuer.crt'), 'SIGKILL', 'a rotation killed between its renames');
  // another command holds the folder: the reload that would finish the switch cannot write now
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], { stdio: 'ignore' });
  t.teardown(() => void holder.kill());
  await once(holder, 'spawn');
  await writeFile(join(dir, '.lock'), String(holder.pid), { mode: 0o600 });
  // state.json touched (a CA looks again when it changes): the next request reloads the folder
  const later = new Date(Date.now() + 5_000);
  await utimes(join(dir, 'state.json'), later, later);
  const started = performance.now();
  const answer = await callCa(ca.server.url, { path: '/v1/bundle', ca: bundle });
  const took = performance.now() - started;
  t.equal(answer.status, 200, 'answered');
  // it waited the lock's whole 10 s, as did /v1/sign and /metrics (the sidecar's CA timeout)
  t.ok(took < 4_000, `within the reload's short wait for the lock, not the lock's 10 s (${Math.round(took)} ms)`);
  // the holder done, state.json untouched: the reload is tried again a few seconds on, and
  // finishes the switch (it was taken as loaded, and the replaced issuer signed on for good)
  await rm(join(dir, '.lock'));
  await waitFor(async () => (await callCa(ca.server.url, { path: '/v1/bundle', ca: bundle })).status === 200 && !(await readdir(dir)).includes('issuer.next.crt'), 15_000, 'the switch finished by a later reload');
});

t.test('killed before the key: the old pair signs on', async (t) => {
  const dir = await makeCaDir();
  const before = await serialOf(dir);
  t.equal(await runStepKilledAt(dir, 'rotate-issuer', 'issuer.key'), 'SIGKILL', 'the rotation was killed at the rename of issuer.key');
  const material = await loadCaMaterial(dir, 'mesh.local');
  t.equal(material.issuerCert.serialNumber, before, 'the old issuer signs');
  t.ok(material.issuerCert.checkPrivateKey(material.issuer.key), 'with its own key');
});

t.test('a key that belongs to no certificate here is still refused, naming the way out', async (t) => {
  const dir = await makeCaDir();
  const other = await makeCaDir();
  await readFile(join(other, 'issuer.key'), 'utf8').then((pem) => import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'issuer.key'), pem, { mode: 0o600 })));
  await t.rejects(loadCaMaterial(dir, 'mesh.local'), { code: 'ca_missing', message: /does not belong to .*meshcar ca rotate-issuer --dir/ });
});

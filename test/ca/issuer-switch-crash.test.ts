// A crash while `ca rotate-issuer` (or `root activate`, or a server's own issuerRotation)
// replaces the issuer's key and certificate leaves a CA that starts: killed before the key's
// rename, the old pair signs on; killed between the key's and the certificate's, the next load
// finishes the switch and the new pair signs. Such a crash used to leave the new key beside the
// old certificate, and every command and `ca serve` refused the folder ("issuer.key does not
// belong to issuer.crt"). The crash is a real SIGKILL of a child process at that rename.

import t from 'tap';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { loadCaMaterial } from '../../src/ca/store.js';
import { makeCaDir, runCli } from '../helpers/ca.js';
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

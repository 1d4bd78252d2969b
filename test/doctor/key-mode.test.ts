// The SVID key's mode as doctor tells it: a key its group may read (a Secret mounted 0640 for
// an fsGroup) was "readable by others (mode 0640)", which sent a reader looking at the wrong
// bits; the line names who may read it.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

for (const [mode, who] of [[0o640, 'its group'], [0o604, 'others'], [0o644, 'its group and others']] as const) {
  t.test(`key mode ${mode.toString(8)}: readable by ${who}`, async (t) => {
    const pki = await makePki('mesh.local');
    const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
    const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'bundle.pem': pki.bundlePem });
    await writeFile(join(dir, 'svid.key'), leaf.privateKeyPem, { mode });
    await writeFile(
      join(dir, 'orders.yaml'),
      `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}\n` +
        'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:1"}\n',
    );
    const proc = startMeshcar(['doctor', '--config', join(dir, 'orders.yaml')]);
    t.equal(await proc.exited(), 1);
    const line = proc.lines.map((l) => String(l.msg)).find((l) => l.startsWith('✗ identity')) ?? '';
    t.equal(line, `✗ identity: ${join(dir, 'svid.key')} is readable by ${who} (mode 0${mode.toString(8)}), expected 0600 — fix: chmod 600 ${join(dir, 'svid.key')}`);
  });
}

for (const [what, key] of [['a key that does not parse', '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n'], ['two keys', 'TWO'], ['the certificate, no key', 'CERT']] as const) t.test(`a key file holding ${what}: the line names the key file, with a fix`, async (t) => {
  // it named the certificate file, with no fix
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'bundle.pem': pki.bundlePem });
  const text = key === 'TWO' ? leaf.privateKeyPem + leaf.privateKeyPem : key === 'CERT' ? leaf.chainPem : key;
  await writeFile(join(dir, 'svid.key'), text, { mode: 0o600 });
  await writeFile(
    join(dir, 'orders.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}\n` +
      'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:1"}\n',
  );
  const proc = startMeshcar(['doctor', '--config', join(dir, 'orders.yaml')]);
  t.equal(await proc.exited(), 1);
  const line = proc.lines.map((l) => String(l.msg)).find((l) => l.startsWith('✗ identity')) ?? '';
  t.match(line, `✗ identity: ${join(dir, 'svid.key')}: `, line);
  t.match(line, /(the private key cannot be read|the key file must hold exactly one PEM private key).* — fix: put the SVID's private key there, alone, as PEM/);
});

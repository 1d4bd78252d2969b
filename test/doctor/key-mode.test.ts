// The SVID key's mode as doctor tells it: a key its group may read (a Secret mounted 0640 for
// an fsGroup) was "readable by others (mode 0640)", which sent a reader looking at the wrong
// bits; the line names who may read it. And a key file that does not parse, or holds no key or
// two, is named as the key file, with a fix (the line named the certificate file, with none).

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

/** doctor's `✗ identity` line for a files-mode config whose key file holds `key(leaf)` at `mode`; `keyFile`: its path. */
async function identityLine(t: Tap.Test, key: (leaf: IssuedLeaf) => string, mode: number): Promise<{ line: string; keyFile: string }> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'bundle.pem': pki.bundlePem });
  const keyFile = join(dir, 'svid.key');
  await writeFile(keyFile, key(leaf), { mode });
  await writeFile(
    join(dir, 'orders.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'svid.crt')}, key: ${keyFile}, bundle: ${join(dir, 'bundle.pem')}}\n` +
      'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:1"}\n',
  );
  const proc = startMeshcar(['doctor', '--config', join(dir, 'orders.yaml')]);
  t.equal(await proc.exited(), 1);
  return { line: proc.lines.map((l) => String(l.msg)).find((l) => l.startsWith('✗ identity')) ?? '', keyFile };
}

for (const [mode, who] of [[0o640, 'its group'], [0o604, 'others'], [0o644, 'its group and others']] as const) {
  t.test(`key mode ${mode.toString(8)}: readable by ${who}`, async (t) => {
    const { line, keyFile } = await identityLine(t, (leaf) => leaf.privateKeyPem, mode);
    t.equal(line, `✗ identity: ${keyFile} is readable by ${who} (mode 0${mode.toString(8)}), expected 0600 — fix: chmod 600 ${keyFile}`);
  });
}

const NOT_A_KEY = '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n';
for (const [what, key] of [
  ['a key that does not parse', () => NOT_A_KEY],
  ['two keys', (leaf: IssuedLeaf) => leaf.privateKeyPem + leaf.privateKeyPem],
  ['the certificate, no key', (leaf: IssuedLeaf) => leaf.chainPem],
] as const) {
  t.test(`a key file holding ${what}: the line names the key file, with a fix`, async (t) => {
    // it named the certificate file, with no fix
    const { line, keyFile } = await identityLine(t, key, 0o600);
    t.match(line, `✗ identity: ${keyFile}: `, line);
    t.match(line, /(the private key cannot be read|the key file must hold exactly one PEM private key).* — fix: put the SVID's private key there, alone, as PEM/);
  });
}

// `meshcar doctor` on identity.files whose intermediate ends before the leaf: the SVID stops
// working at the intermediate's end (every peer refuses it), while the leaf's own date suggests
// time to spare. The identity line is a warning that names the intermediate, both dates and the
// fix; a chain that outlives its leaf stays ✓.

import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { checkIdentity } from '../../src/doctor/identity.js';
import { formatResult } from '../../src/doctor/result.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';

async function identityLine(t: Tap.Test, chainPem: string, keyPem: string, bundlePem: string): Promise<{ status: string; line: string }> {
  const dir = t.testdir();
  const path = (name: string) => join(dir, name);
  await writeFile(path('svid.crt'), chainPem);
  await writeFile(path('svid.key'), keyPem, { mode: 0o600 });
  await writeFile(path('bundle.pem'), bundlePem);
  await writeFile(path('orders.yaml'), `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${path('svid.crt')}, key: ${path('svid.key')}, bundle: ${path('bundle.pem')}}}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const { result } = await checkIdentity(await loadSidecarConfig(path('orders.yaml')));
  return { status: result.status, line: formatResult(result) };
}

t.test('an intermediate ending before the leaf: a warning naming it, both dates and the fix', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issueUnderShortIssuer('spiffe://mesh.local/svc/orders', 1_800_000);
  const { status, line } = await identityLine(t, leaf.chainPem, leaf.privateKeyPem, leaf.bundlePem);
  t.equal(status, 'warn', line);
  const end = new Date(leaf.issuerNotAfterMs).toISOString();
  const leafEnd = new Date(new X509Certificate(leaf.certificatePem).validTo).toISOString();
  t.match(line, `valid until ${end}`, "the SVID's end is the intermediate's");
  t.match(line, new RegExp(`: the chain's "[^"]+" \\(serial [0-9a-f]+\\) expires then, before the leaf \\(${leafEnd.replace(/\./g, '\\.')}\\); from then on every peer refuses this sidecar`));
  t.match(line, /— fix: whoever writes identity\.files must issue the leaf under an issuer that outlives it/);
});

t.test('a chain that outlives its leaf: ✓', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const { status, line } = await identityLine(t, leaf.chainPem, leaf.privateKeyPem, pki.bundlePem);
  t.equal(status, 'ok', line);
});

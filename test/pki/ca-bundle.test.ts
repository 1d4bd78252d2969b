// identity.ca.bundle must hold the CA's roots: PEM certificates, each a CA's. `meshcar check` and
// `meshcar run` say so alike, in one line, before anything is asked of the CA. run took an empty
// file, a key or a DER file and said only "does not chain to identity.ca.bundle" (CA up) or
// retried "unreachable" for good (CA down); svid.crt (a leaf and its issuer) passed check and
// ended run with ca_mismatch (a review). Real CLI runs, certificates from our test CA.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { caBundleProblem } from '../../src/pki/ca-bundle.js';

t.test('what a CA bundle holds: only CA certificates', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  t.equal(caBundleProblem(pki.bundlePem), undefined, "the CA's bundle.pem");
  t.match(caBundleProblem(leaf.chainPem), /^certificate 1 \(spiffe:\/\/mesh\.local\/svc\/orders\) is not a CA certificate \(a leaf, as svid\.crt holds/, 'svid.crt');
  t.match(caBundleProblem(leaf.privateKeyPem), /holds a private key, not certificates/, 'a key');
  t.match(caBundleProblem(''), /the file is empty/, 'empty');
  const der = new X509Certificate(pki.bundlePem).raw.toString('latin1');
  t.match(caBundleProblem(der), /a DER file converts with openssl x509 -inform der/, 'DER');
});

t.test('check and run refuse svid.crt as identity.ca.bundle alike, run before asking the CA', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'orders.token': 'x.y.z\n' });
  const config = join(dir, 'orders.yaml');
  // the CA's address: nothing listens there (run retried "unreachable" for 30 s, then said so)
  await writeFile(config, `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:9", bundle: ${join(dir, 'svid.crt')}, token: ${join(dir, 'orders.token')}}\n  dir: ${join(dir, 'id')}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const check = startMeshcar(['check', '--config', config]);
  t.equal(await check.exited(), 1, 'check exits 1');
  t.match(check.stderr.join('\n'), /identity\.ca\.bundle: .*svid\.crt: certificate 1 \(spiffe:\/\/mesh\.local\/svc\/orders\) is not a CA certificate/, 'check names the key and why');

  const run = startMeshcar(['run', '--config', config]);
  t.teardown(() => run.stop('SIGKILL'));
  const started = Date.now();
  const code = await Promise.race([run.exited(), new Promise((resolve) => setTimeout(resolve, 20_000, 'still running after 20 s').unref())]);
  t.equal(code, 1, `run exits 1, in ${Date.now() - started} ms`);
  const said = [...run.lines.filter((l) => Number(l.level) >= 50).map((l) => String(l.msg)), ...run.stderr].join('\n');
  t.match(said, /identity\.ca\.bundle: .*svid\.crt: certificate 1 \(spiffe:\/\/mesh\.local\/svc\/orders\) is not a CA certificate/, 'run says the same');
  t.notMatch(said, /unreachable/, 'not "unreachable"');
});

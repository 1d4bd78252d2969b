// identity.files whose three files each hold what they should but do not work together: a
// certificate from another CA than the bundle's, a key of another certificate, another
// service's certificate. `meshcar check` passed them ("valid sidecar configuration") and `run`
// refused them at once; check now says what run would, at identity.files.cert.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

async function check(t: Tap.Test, files: { crt: string; key: string; bundle: string }): Promise<{ status: number | null; text: string }> {
  const dir = t.testdir({ 'svid.crt': files.crt, 'svid.key': files.key, 'bundle.pem': files.bundle });
  await writeFile(
    join(dir, 'orders.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}\n` +
      'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\n',
  );
  const proc = startMeshcar(['check', '--config', join(dir, 'orders.yaml')]);
  const status = await proc.exited();
  return { status, text: [...proc.stderr, ...proc.lines.map((line) => String(line.msg))].join('\n') };
}

t.test('a set that does not work together is refused by check, as run refuses it', async (t) => {
  const pki = await makePki('mesh.local');
  const other = await makePki('mesh.local');
  const orders = await pki.issue('spiffe://mesh.local/svc/orders');
  const second = await pki.issue('spiffe://mesh.local/svc/orders');
  const billing = await pki.issue('spiffe://mesh.local/svc/billing');
  const foreign = await other.issue('spiffe://mesh.local/svc/orders');

  const good = await check(t, { crt: orders.chainPem, key: orders.privateKeyPem, bundle: pki.bundlePem });
  t.equal(good.status, 0, good.text);

  const otherCa = await check(t, { crt: foreign.chainPem, key: foreign.privateKeyPem, bundle: pki.bundlePem });
  t.equal(otherCa.status, 1);
  t.match(otherCa.text, /identity\.files\.cert: .*svid\.crt \/ .*svid\.key \/ .*bundle\.pem: .*was not issued by any certificate of the chain or the bundle.*\(run refuses this set\)/);

  const otherKey = await check(t, { crt: orders.chainPem, key: second.privateKeyPem, bundle: pki.bundlePem });
  t.equal(otherKey.status, 1);
  t.match(otherKey.text, /identity\.files\.cert: .*the private key does not match/);

  const otherService = await check(t, { crt: billing.chainPem, key: billing.privateKeyPem, bundle: pki.bundlePem });
  t.equal(otherService.status, 1);
  t.match(otherService.text, /identity\.files\.cert: .*spiffe:\/\/mesh\.local\/svc\/billing.*spiffe:\/\/mesh\.local\/svc\/orders/);
});

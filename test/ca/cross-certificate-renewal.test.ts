// Renewal at the CA with a chain that carries a root rotation's cross certificate (the CA's root
// name and key, signed by the old root, clamped to the old root's end): while a new root is
// active every leaf the CA hands out travels with one, and a sidecar renews presenting its whole
// chain. OpenSSL ends the path at the trusted root; the CA's own date check counted the cross
// certificate too, so from the old root's end, and for the 10 minutes of slack after it, every
// renewal by certificate was refused as expired, telling the sidecar to get a join token (the
// inbound and the outbound passed such a copy over already). Real CA, real HTTPS, the SVID from
// the CA itself; the cross certificate made here under a throwaway old root key.

import t from 'tap';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, startSigningCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey, spkiDerOf } from '../../src/pki/keys.js';
import { issueCrossCertificate, rootName } from '../../src/ca/x509-profile.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const DAY_MS = 86_400_000;

async function csrFor(): Promise<{ csr: string; key: string }> {
  const keys = await generateWorkloadKey();
  return { csr: await buildCsr(createPrivateKey(keys.privateKeyPem), createPublicKey(keys.publicKeyPem), ORDERS), key: keys.privateKeyPem };
}

t.test("a renewal presenting a cross certificate whose old root has ended is the leaf's to make", async (t) => {
  const { ca, bundle, token } = await startSigningCa();
  t.teardown(() => ca.close());
  const first = await csrFor();
  const issued = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr: first.csr }), headers: { authorization: `Bearer ${token}` }, ca: bundle });
  t.equal(issued.status, 200, 'signed with the join token');
  const chain = String(issued.json().chain);
  // the CA's root, as the bundle file holds it: the cross certificate names it and carries its key
  const root = new X509Certificate(await readFile(join(ca.dir, 'bundle.pem'), 'utf8'));
  const oldKeys = await generateWorkloadKey();
  const oldRoot = { key: createPrivateKey(oldKeys.privateKeyPem), name: rootName('mesh.local'), spki: spkiDerOf(createPublicKey(oldKeys.publicKeyPem)) };
  for (const [label, endOffsetMs] of [['ends in 2 minutes', 2 * 60_000], ['ended 5 minutes ago', -5 * 60_000]] as const) {
    const cross = (await issueCrossCertificate(oldRoot, new Date(Date.now() + endOffsetMs), spkiDerOf(root.publicKey), 'mesh.local', new Date(Date.now() - DAY_MS))).pem;
    const next = await csrFor();
    const renewed = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr: next.csr }), cert: chain + cross, key: first.key, ca: bundle });
    t.equal(renewed.status, 200, `old root ${label}: renewed (${renewed.text.slice(0, 200)})`);
  }
});

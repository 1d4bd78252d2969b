// The sidecar's CSR is encoded without node-forge (src/pki/csr-request.ts, issue 10: a sidecar
// never loads forge). Checked three ways: the CA's own parser (forge, csr.ts) reads it and
// verifies its signature; OpenSSL reads and verifies it too; and its signed part is byte for
// byte what forge's ASN.1 codec encodes for the same key and SPIFFE ID (the encoding it replaced),
// also for an ID long enough to need the long length form and for RSA keys.

import t from 'tap';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { buildCsr, csrInfoDer } from '../../src/pki/csr-request.js';
import { parseAndVerifyCsr } from '../../src/pki/csr.js';
import { asn1, fromDer, integerFromBytes, oid, seq, toDer, OID } from '../../src/pki/der.js';
import { generateRsaKey, generateWorkloadKey, spkiDerOf } from '../../src/pki/keys.js';

/** The CertificationRequestInfo as forge encodes it (the former buildCsr's code). */
function forgeInfoDer(publicKey: KeyObject, spiffeId: string): Buffer {
  const uri = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, spiffeId);
  const san = seq([oid(OID.subjectAltName), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, asn1.toDer(seq([uri])).getBytes())]);
  const extensionRequest = seq([oid(OID.extensionRequest), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([san])])]);
  return toDer(seq([integerFromBytes(Buffer.from([0])), seq([]), fromDer(spkiDerOf(publicKey)), asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [extensionRequest])]));
}

function openssl(args: string[], input: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    child.stdin?.end(input);
  });
}

const LONG_ID = `spiffe://mesh.local/svc/${'a'.repeat(200)}`;

for (const [kind, make] of [['ECDSA P-256', () => generateWorkloadKey()], ['RSA 2048', () => generateRsaKey(2048)]] as const) {
  t.test(`${kind}: the CA and OpenSSL read it, and it is forge's encoding`, async (t) => {
    const pair = await make();
    const privateKey = createPrivateKey(pair.privateKeyPem);
    const publicKey = createPublicKey(pair.publicKeyPem);
    for (const id of ['spiffe://mesh.local/svc/orders', LONG_ID]) {
      t.same(csrInfoDer(publicKey, id), forgeInfoDer(publicKey, id), `${id.length} characters: the signed part equals forge's encoding`);
      const pem = await buildCsr(privateKey, publicKey, id);
      const parsed = await parseAndVerifyCsr(pem);
      t.same(parsed.uris, [id], 'the CA reads the one URI SAN');
      t.same(parsed.otherNames, [], 'and nothing else');
      t.same(parsed.spki, spkiDerOf(publicKey), 'and the public key');
      const checked = await openssl(['req', '-noout', '-verify', '-text'], pem);
      t.equal(checked.code, 0, `openssl req -verify accepts it: ${checked.out.split('\n')[0]}`);
      t.match(checked.out, `URI:${id}`, 'openssl sees the SAN');
    }
  });
}

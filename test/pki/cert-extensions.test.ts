// keyUsage bits read from a certificate's DER by walking its structure: a profile leaf's
// digitalSignature, a root's keyCertSign and cRLSign, none for a certificate without the
// extension, even one whose subject holds the extension's OID bytes (a search of the bytes
// would read them as a keyUsage).

import t from 'tap';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { buildCertificate } from '../../src/pki/certificate.js';
import { generateWorkloadKey, spkiDerOf } from '../../src/pki/keys.js';
import { basicConstraintsCa, KEY_USAGE, keyUsageBits } from '../../src/pki/cert-extensions.js';
import { makePki } from '../helpers/pki.js';

const der = (pem: string) => new X509Certificate(pem).raw;

t.test('keyUsageBits', async (t) => {
  const pki = await makePki('mesh.test');
  t.equal(keyUsageBits(der((await pki.issue('spiffe://mesh.test/svc/a')).certificatePem)), KEY_USAGE.digitalSignature, 'a leaf: digitalSignature');
  t.equal(keyUsageBits(der(pki.rootPem)), KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign, 'a root: keyCertSign and cRLSign');
  t.equal(keyUsageBits(der(pki.issuerPem)), KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign, 'the issuer too');

  // no keyUsage extension, but the subject carries the bytes of one (OID 2.5.29.15, an OCTET
  // STRING holding a BIT STRING with keyCertSign)
  const key = await generateWorkloadKey();
  const decoy = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f, 0x04, 0x04, 0x03, 0x02, 0x01, 0x06]).toString('latin1');
  const cert = await buildCertificate({
    subject: { commonName: decoy },
    issuer: pki.issuer.name,
    subjectPublicKeySpki: spkiDerOf(createPublicKey(key.publicKeyPem)),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingKey: pki.issuer.key,
    extensions: [{ name: 'basicConstraints', cA: false, critical: true }],
  });
  t.ok(cert.der.includes(Buffer.from([0x55, 0x1d, 0x0f, 0x04])), 'the decoy bytes are in the DER');
  t.equal(keyUsageBits(cert.der), undefined, 'no keyUsage extension: none read');
  t.equal(keyUsageBits(Buffer.from([0x30, 0x05, 0x30])), undefined, 'truncated DER: none read');
});

t.test('basicConstraintsCa reads cA whatever the keyUsage', async (t) => {
  const pki = await makePki('mesh.test');
  t.equal(basicConstraintsCa(der((await pki.issue('spiffe://mesh.test/svc/a')).certificatePem)), false, 'a leaf (cA false)');
  t.equal(basicConstraintsCa(der(pki.rootPem)), true, 'a root');
  const quiet = await pki.issueWithUris(['spiffe://mesh.test/svc/a'], { ca: true, keyUsage: { digitalSignature: true } });
  const quietCert = new X509Certificate(quiet.certificatePem);
  t.equal(quietCert.ca, false, "Node's ca is false for cA without keyCertSign (the case this reader is for)");
  t.equal(basicConstraintsCa(quietCert.raw), true, 'read from the extension: cA');
  t.equal(basicConstraintsCa(Buffer.from([0x30, 0x05, 0x30])), false, 'truncated DER: no extension read');
});

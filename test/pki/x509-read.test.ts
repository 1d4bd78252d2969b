// Fields read from certificates without an ASN.1 library (src/pki/x509-read.ts): the
// authorityKeyIdentifier of leaves and issuers from our CA's profile, checked against
// OpenSSL's own reading of the same certificates, and certificates without one.

import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { authorityKeyId } from '../../src/pki/x509-read.js';
import { makePki } from '../helpers/pki.js';

/** The key id OpenSSL reads in the certificate's authorityKeyIdentifier or subjectKeyIdentifier. */
function opensslKeyId(pem: string, extension: 'authorityKeyIdentifier' | 'subjectKeyIdentifier'): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', ['x509', '-noout', '-ext', extension], (err, stdout) => {
      if (err) return reject(err);
      resolve(/([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(stdout)?.[1]);
    });
    child.stdin?.end(pem);
  });
}

t.test('authorityKeyId agrees with openssl for a leaf and its issuer', async (t) => {
  const pki = await makePki('mesh.test');
  const leaf = await pki.issue('spiffe://mesh.test/svc/orders');
  const leafPem = leaf.chainPem.slice(0, leaf.chainPem.indexOf('-----END CERTIFICATE-----') + 26);
  for (const [what, pem] of [['leaf', leafPem], ['issuer', pki.issuerPem]] as const) {
    const expected = await opensslKeyId(pem, 'authorityKeyIdentifier');
    t.ok(expected, `openssl reads an authorityKeyIdentifier in the ${what}`);
    t.equal(authorityKeyId(new X509Certificate(pem)), expected, `${what}: the same key id`);
  }
  // the leaf's AKI is the issuer's subject key id
  t.equal(authorityKeyId(new X509Certificate(leafPem)), await opensslKeyId(pki.issuerPem, 'subjectKeyIdentifier'), "the leaf's key id is its issuer's subject key id");
});


t.test('the self-signed root: as openssl reads it', async (t) => {
  const pki = await makePki('mesh.test');
  // a self-signed root may carry no AKI; whatever openssl says, we say the same
  t.equal(authorityKeyId(new X509Certificate(pki.rootPem)), await opensslKeyId(pki.rootPem, 'authorityKeyIdentifier'), 'the root: as openssl reads it');
});

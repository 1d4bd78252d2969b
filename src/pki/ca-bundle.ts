// What a file named as a CA bundle (identity.ca.bundle: the roots a sidecar trusts the CA by)
// must hold: PEM certificates, each a CA's. `meshcar check` and `meshcar run` judge it alike:
// run took an empty file, a key or a DER file and then said only "does not chain to
// identity.ca.bundle" (CA up) or retried "unreachable" for good (CA down); a leaf and its
// issuer (svid.crt) passed check and ended run with ca_mismatch (a review).

import { X509Certificate } from 'node:crypto';
import { pemBlocks } from './pem.js';

/** Why `text` is no CA bundle, or undefined. */
export function caBundleProblem(text: string): string | undefined {
  const blocks = pemBlocks(text);
  const certificates = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certificates.length === 0) {
    if (blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) return "it holds a private key, not certificates: name the CA's bundle.pem";
    if (text.trim() === '') return "the file is empty: name the CA's bundle.pem";
    if (blocks.length === 0 && !text.includes('-----BEGIN')) return "it holds no PEM certificate (-----BEGIN CERTIFICATE-----); a DER file converts with openssl x509 -inform der -in FILE -out bundle.pem";
    return "it holds no PEM certificate (-----BEGIN CERTIFICATE-----): name the CA's bundle.pem";
  }
  for (const [i, block] of certificates.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block.der);
    } catch (err) {
      return `certificate ${i + 1} does not parse: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (!cert.ca) {
      const uri = /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
      return `certificate ${i + 1} (${uri ?? cert.subject.replace(/\n/g, ', ')}) is not a CA certificate (a leaf, as svid.crt holds, or one without CA:TRUE and keyCertSign): the bundle holds the CA's roots; name the bundle.pem of the CA folder (meshcar ca init wrote it)`;
    }
  }
  return undefined;
}

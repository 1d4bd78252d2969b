// A CA folder's certificates and keys parsed with the file named in the error. A root.key,
// token.key or issuer.crt that held something else (a join token written over it, a file
// truncated by a full disk) was Node's own "error:1E08010C:DECODER routines::unsupported": a
// stack trace and exit 70 from `ca root add`, `ca rotate-issuer` or `ca token`, or one line
// naming no file from the others.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { unreadableDatesProblem } from '../pki/cert-dates.js';

function unreadable(dir: string, file: string, what: string, err: unknown): MeshcarError {
  // Node's reason is OpenSSL's ("PEM routines::no start line"): kept, after what it means
  return new MeshcarError('ca_missing', `${join(dir, file)} is not ${what} (${(err as Error).message}); the CA cannot use it: restore it from a backup`);
}

/** The certificate `pem` read from `dir`/`file`: one whose dates this host cannot read is refused too. */
export function caCertificate(dir: string, file: string, pem: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw unreadable(dir, file, 'a PEM certificate', err);
  }
  // its NaN dates would pass every expiry check and crash whatever prints them (ca status)
  const dates = unreadableDatesProblem(cert);
  if (dates !== undefined) throw new MeshcarError('ca_missing', `the certificate at ${join(dir, file)} ${dates}; the CA cannot use it: restore it from a backup`);
  return cert;
}

/** The private key `pem` read from `dir`/`file`. */
export function caPrivateKey(dir: string, file: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw unreadable(dir, file, 'a PEM private key', err);
  }
}

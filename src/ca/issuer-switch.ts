// Replacing the signing issuer's key and certificate, two files, so that a crash at any moment
// leaves a CA that starts. Both new files are written first beside the old ones (staged), then
// renamed over them, key first. A crash before the key's rename leaves the old pair whole (the
// staged files are written over at the next rotation); a crash between the renames leaves the
// new key beside the old certificate, which loadCaMaterial (store.ts) finishes by renaming the
// staged certificate in. Before this, a crash there left a CA that refused to start ("issuer.key
// does not belong to issuer.crt") until someone ran rotate-issuer again.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory, writeFileAtomic } from '../atomic-file.js';

const ISSUER_KEY = 'issuer.key';
const ISSUER_CERT = 'issuer.crt';
/** The new pair before it is renamed in. */
export const STAGED_ISSUER = { key: 'issuer.next.key', cert: 'issuer.next.crt' } as const;

/** Makes `keyPem` and `certPem` the signing issuer's key and certificate. */
export async function installIssuerPair(dir: string, keyPem: string, certPem: string): Promise<void> {
  await writeFileAtomic(join(dir, STAGED_ISSUER.key), keyPem, 0o600);
  await writeFileAtomic(join(dir, STAGED_ISSUER.cert), certPem, 0o644);
  await rename(join(dir, STAGED_ISSUER.key), join(dir, ISSUER_KEY));
  await rename(join(dir, STAGED_ISSUER.cert), join(dir, ISSUER_CERT));
  await fsyncDirectory(dir);
}

/**
 * The issuer's key does not belong to its certificate: if a switch stopped between its renames
 * (the staged certificate is the key's), it is finished and the new certificate's PEM returned;
 * otherwise undefined (the folder is damaged some other way). `readOnly` (ca status, check:
 * no CA lock held, nothing written): the PEM the switch would finish with, the folder as it is.
 */
export async function finishIssuerSwitch(dir: string, key: KeyObject, readOnly = false): Promise<string | undefined> {
  const staged = join(dir, STAGED_ISSUER.cert);
  let pem: string;
  try {
    pem = await readFile(staged, 'utf8');
    if (!new X509Certificate(pem).checkPrivateKey(key)) return undefined;
  } catch {
    return undefined;
  }
  if (readOnly) return pem;
  await rename(staged, join(dir, ISSUER_CERT));
  await fsyncDirectory(dir);
  return pem;
}

// `check` of a CA config: the CA folder it names must be a CA of its trustDomain, as `ca serve`
// requires (the issuer's O= is the trust domain, src/ca/store.ts). A CA made with make ca
// TRUST_DOMAIN=example.org under a config saying mesh.local passed check and was refused by serve.

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The fix `ca serve` and `check` give when the folder's CA is for `found`, not the config's `expected`. */
export function trustDomainFix(found: string, expected: string): string {
  return `set trustDomain: ${found} in the CA config (and every sidecar's), or point dir at a CA made for ${expected} (meshcar ca init --dir NEW_DIR --trust-domain ${expected})`;
}

/** Why the CA in `dir` does not serve `trustDomain`, or undefined (also when it cannot be read: ca serve says why). */
export async function caTrustDomainProblem(dir: string, trustDomain: string): Promise<string | undefined> {
  let found: string | undefined;
  try {
    // src/ca/store.ts CA_FILES.issuerCert, read without loading the CA's modules
    const issuer = new X509Certificate(await readFile(join(dir, 'issuer.crt')));
    found = /(?:^|\n)O=([^\n]+)/.exec(issuer.subject)?.[1];
  } catch {
    return undefined;
  }
  if (found === undefined || found === trustDomain) return undefined;
  return `the CA in ${dir} is for trust domain "${found}", not "${trustDomain}": ${trustDomainFix(found, trustDomain)}`;
}

// Whether a certificate still chains to one of a set of roots, by signature: the leaf, through
// the other certificates its peer presented, to a root. For connections verified at their
// handshake under a trust bundle that has since changed: OpenSSL checked the whole path then
// (dates, constraints, key usage); what a smaller bundle changes is only whether some path from
// the same certificates still ends at a root it holds. During a root rotation a leaf of the new
// root arrives beside a cross certificate (the new root's key signed by the old root), so the
// path Node shows may end at the old root while another ends at the new one: any path counts.

import { X509Certificate } from 'node:crypto';
import { splitPemCertificates } from './pem.js';

/** Leaf plus intermediates followed at most (peer-validity.ts MAX_PATH). */
const MAX_DEPTH = 4;

/** The certificates of a PEM bundle (unreadable ones left out: they vouch for nothing). */
export function bundleRoots(pem: string): X509Certificate[] {
  const roots: X509Certificate[] = [];
  for (const text of splitPemCertificates(pem)) {
    try {
      roots.push(new X509Certificate(text));
    } catch {
      // a bundle the identity took has been parsed before; nothing to add
    }
  }
  return roots;
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Whether `leaf`, through `others` (in any order, each used once), is signed by a root of `roots`. */
export function chainsToRoots(leaf: X509Certificate, others: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  const rootPrints = new Set(roots.map((root) => root.fingerprint256));
  const used = new Set<string>([leaf.fingerprint256]);
  const walk = (cert: X509Certificate, depth: number): boolean => {
    if (rootPrints.has(cert.fingerprint256)) return true;
    if (roots.some((root) => signedBy(cert, root))) return true;
    if (depth >= MAX_DEPTH) return false;
    for (const next of others) {
      const print = next.fingerprint256;
      if (used.has(print) || !signedBy(cert, next)) continue;
      used.add(print);
      if (walk(next, depth + 1)) return true;
      used.delete(print);
    }
    return false;
  };
  return walk(leaf, 1);
}

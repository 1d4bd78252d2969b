// Whether a certificate still chains to one of a set of roots, by signature: the leaf, through
// the other certificates its peer presented, to a root. For connections verified at their
// handshake under a trust bundle that has since changed: OpenSSL checked the whole path then
// (dates, constraints, key usage); what a smaller bundle changes is only whether some path from
// the same certificates still ends at a root it holds. During a root rotation a leaf of the new
// root arrives beside a cross certificate (the new root's key signed by the old root), so the
// path Node shows may end at the old root while another ends at the new one: any path counts.
//
// The certificates besides the leaf come from peers (a caller's handshake shows up to ten, and
// other callers' are pooled for a resumed session's bare leaf): whoever holds a valid leaf can
// send certificates that all sign one another. A search over every path (a review: ten such
// connections held the event loop 3 s, sixteen 13 s, growing with the cube) is replaced by a
// breadth-first one that takes each certificate once, only certificate authorities valid now
// (OpenSSL used no other; dates read as cert-dates.ts reads them), tries the peer's own few
// first, looks a shared pool up by name (compared as OpenSSL compares names), stops at the
// first root, and gives up after a fixed number of signature checks and candidates: a peer's
// junk costs at most that, and a genuine path (leaf, issuer, root; a cross certificate
// mid-rotation) needs two to four.

import { X509Certificate } from 'node:crypto';
import { readPrintedDate } from './cert-dates.js';
import { splitPemCertificates } from './pem.js';

/** Leaf plus intermediates followed at most (peer-validity.ts MAX_PATH). */
const MAX_DEPTH = 4;

/** Signature checks one search may make (~0.07 ms each for P-256): a genuine path needs 2-4. */
export const MAX_SIGNATURE_CHECKS = 32;

/** Certificates one search may look at (a name and key-identifier match each, ~1 µs): bounds a pool crowded with one issuer's name. */
export const MAX_CANDIDATES = 256;

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

/** Issuers of a shared pool, looked up by subject name (nameKey): certificate authorities inside their dates, each once, in the order given. */
export type IssuerIndex = ReadonlyMap<string, readonly X509Certificate[]>;

/**
 * A name as OpenSSL compares names (RFC 5280 §7.1: case, runs of white space, and white space at
 * either end of a value do not count), as far as Node prints it: an issuer field spelt
 * 'CN=issuer ca' names the certificate 'CN=Issuer CA'. Node escapes what it prints (`\ ` for a
 * space at either end, `\09` for a tab): a value is read back unescaped first, or
 * 'CN=\  mesh   root\ ' named no 'CN=Mesh Root', which OpenSSL takes for the same name.
 */
export function nameKey(printed: string): string {
  return printed
    .split('\n')
    .map((line) => {
      const eq = line.indexOf('=');
      const value = line.slice(eq + 1);
      const plain = value.indexOf('\\') === -1 ? value : value.replace(/\\([0-9a-fA-F]{2}|.)/g, (_, escaped: string) => (escaped.length === 2 ? String.fromCharCode(parseInt(escaped, 16)) : escaped));
      return `${line.slice(0, eq + 1).trim()}${plain.replace(/\s+/g, ' ').trim()}`;
    })
    .join('\n')
    .toLowerCase();
}

/** The certificates of `certs` that can have issued something at `nowMs` (OpenSSL used no other), by subject. */
export function issuerIndex(certs: Iterable<X509Certificate>, nowMs = Date.now()): IssuerIndex {
  const bySubject = new Map<string, X509Certificate[]>();
  const seen = new Set<string>();
  for (const cert of usableIssuers(certs, nowMs, seen)) {
    const key = nameKey(cert.subject);
    const list = bySubject.get(key);
    if (list === undefined) bySubject.set(key, [cert]);
    else list.push(cert);
  }
  return bySubject;
}

function* usableIssuers(certs: Iterable<X509Certificate>, nowMs: number, seen = new Set<string>()): Generator<X509Certificate> {
  for (const cert of certs) {
    if (!cert.ca || seen.has(cert.fingerprint256) || !validAt(cert, nowMs)) continue;
    seen.add(cert.fingerprint256);
    yield cert;
  }
}

/** Inside its dates at `nowMs`; a date this host cannot read does not rule it out (OpenSSL read it). */
function validAt(cert: X509Certificate, nowMs: number): boolean {
  const from = readPrintedDate(cert.validFrom);
  const to = readPrintedDate(cert.validTo);
  return (from === undefined || from.getTime() <= nowMs) && (to === undefined || nowMs <= to.getTime());
}

const NONE: readonly X509Certificate[] = [];
/** No shared pool (a search through the peer's own certificates alone). */
const NO_POOL: IssuerIndex = new Map();

/**
 * Whether `leaf`, through `others` (the few its peer presented, tried first, in their order,
 * each against every name OpenSSL would match) and then `pool` (an index shared by many
 * searches, built once), is signed by a root of `roots` within MAX_DEPTH certificates,
 * MAX_SIGNATURE_CHECKS signature checks (`spent` counts them) and MAX_CANDIDATES certificates
 * looked at. `path`, when given, receives the intermediates of the path found, leaf's issuer first.
 */
export function chainsToRoots(
  leaf: X509Certificate,
  others: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  nowMs = Date.now(),
  spent = { checks: 0 },
  pool: IssuerIndex = NO_POOL,
  path?: X509Certificate[],
): boolean {
  const rootPrints = new Set(roots.map((root) => root.fingerprint256));
  const own = [...usableIssuers(others, nowMs)];
  let looked = 0;
  const signedBy = (cert: X509Certificate, issuer: X509Certificate): boolean => {
    try {
      // the names and key identifiers first (no signature): most pairs end there
      if (!cert.checkIssued(issuer)) return false;
      spent.checks++;
      return cert.verify(issuer.publicKey);
    } catch {
      return false;
    }
  };
  const reachesRoot = (cert: X509Certificate): boolean => rootPrints.has(cert.fingerprint256) || roots.some((root) => signedBy(cert, root));
  if (reachesRoot(leaf)) return true;
  // each certificate once, with the one it was reached from: the path found is read back from it
  const reachedFrom = new Map<X509Certificate, X509Certificate>();
  const seen = new Set<string>([leaf.fingerprint256]);
  const found = (last: X509Certificate): true => {
    if (path !== undefined) {
      const chain: X509Certificate[] = [];
      for (let cert: X509Certificate | undefined = last; cert !== undefined && cert !== leaf; cert = reachedFrom.get(cert)) chain.unshift(cert);
      path.push(...chain);
    }
    return true;
  };
  let level = [leaf];
  for (let depth = 1; depth < MAX_DEPTH && level.length > 0; depth++) {
    const next: X509Certificate[] = [];
    for (const cert of level) {
      for (const candidates of [own, pool.get(nameKey(cert.issuer)) ?? NONE]) {
        for (const issuer of candidates) {
          if (spent.checks >= MAX_SIGNATURE_CHECKS || ++looked > MAX_CANDIDATES) return false;
          if (seen.has(issuer.fingerprint256) || !signedBy(cert, issuer)) continue;
          seen.add(issuer.fingerprint256);
          reachedFrom.set(issuer, cert);
          if (reachesRoot(issuer)) return found(issuer);
          next.push(issuer);
        }
      }
    }
    level = next;
  }
  return false;
}

/** Whether the bundle `after` leaves out a root the bundle `before` held (PEM both). */
export function rootsRemoved(before: string, after: string): boolean {
  const kept = new Set(bundleRoots(after).map((root) => root.fingerprint256));
  return bundleRoots(before).some((root) => !kept.has(root.fingerprint256));
}

// An X509-SVID credential set (key, chain, bundle) and the one gate every such set passes
// before meshcar serves it: whatever its source (the CA, the disk, watched files), a set that
// does not hold together is refused here with a one-line reason, never discovered at handshake.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { MeshcarError, describeError } from '../errors.js';
import { formatApproxDuration } from '../config/duration.js';
import { encryptedKeyProblem, hasUnterminatedPemBlock, pemBlocks, splitPemCertificates } from '../pki/pem.js';
import { uriSans } from '../pki/x509-read.js';
import { svidLeafProblem } from './svid-leaf.js';
import { basicConstraintsCa } from '../pki/cert-extensions.js';
import { clip } from '../clip.js';
import { readPrintedDate, unreadableDatesProblem } from '../pki/cert-dates.js';
import { tlsKeyProblem } from '../pki/keys.js';

export interface SvidMaterial {
  readonly privateKeyPem: string;
  /** Leaf first, then the intermediates that lead to a root of the bundle. */
  readonly chainPem: string;
  /** Trusted roots; several during a root rotation. */
  readonly bundlePem: string;
  /** The files chainPem and bundlePem were read from, named in a refusal about one certificate. */
  readonly paths?: { readonly chain: string; readonly bundle: string };
}

export interface Svid extends SvidMaterial {
  readonly spiffeId: string;
  /** Lower-case hex, as the CA and the admin endpoint print it. */
  readonly serialHex: string;
  /** The leaf's own notBefore. */
  readonly notBefore: Date;
  /**
   * When the SVID stops working: the earliest notAfter on its path (the leaf, the intermediates
   * of its chain that lead to the bundle, the bundle root they end at). Every peer
   * refuses it from then on, whatever the leaf says, so /ready, the expiry metric, /identity
   * and renewal all go by this. Equal to leafNotAfter for what our CA issues (it never lets a
   * leaf outlive its issuer, nor an issuer its root).
   */
  readonly notAfter: Date;
  /** The leaf's own notAfter: later than notAfter when its chain ends first. */
  readonly leafNotAfter: Date;
  /**
   * The certificate that ends at notAfter, for messages: 'the leaf "CN" (serial …)', 'the
   * chain's "CN" (serial …)' or 'the bundle root "CN" (serial …)' (the leaf, when others end
   * with it in the same second).
   */
  readonly endsWith: string;
  /**
   * When the whole set is valid: the latest notBefore of the leaf and its signers. In the past
   * for anything validateSvid returns; may be ahead for validateSvidSoon's (served from then).
   */
  readonly validFrom: Date;
  readonly leaf: X509Certificate;
}

/**
 * How far ahead of this host's clock a new SVID may start and still be kept, to be served once
 * it is valid: a CA host whose clock runs ahead by more than the CA's backdating (60 s, or a
 * tenth of a short lifetime) issues certificates that start in our future. Five minutes covers
 * a host whose NTP is late or briefly broken; a clock off by more is a fault to fix, said as such.
 */
export const MAX_NOT_YET_VALID_MS = 5 * 60_000;

/** Signers above a leaf: a two-tier CA needs 2; a little slack, but never an unbounded walk. */
const MAX_CHAIN_DEPTH = 4;

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** A time a refusal (or its cause) carries under `key` (ms since the epoch). */
function refusalTime(err: unknown, key: 'notValidBeforeMs' | 'expiredAtMs'): number | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const ms = (e as Partial<Record<typeof key, unknown>>)[key];
    if (typeof ms === 'number') return ms;
  }
  return undefined;
}

/** When a refusal (or its cause) was only about time: the set becomes valid then (ms since the epoch). */
export function notValidBeforeMs(err: unknown): number | undefined {
  return refusalTime(err, 'notValidBeforeMs');
}

/** When a refusal (or its cause) was for a certificate that has expired: its notAfter (ms since the epoch). */
export function expiredAtMs(err: unknown): number | undefined {
  return refusalTime(err, 'expiredAtMs');
}

function refuse(reason: string): never {
  throw new MeshcarError('identity_invalid', reason);
}

/** (An unreadable date is an Invalid Date: every certificate here passed parseCertificates.) */
export function notBeforeOf(cert: X509Certificate): Date {
  return readPrintedDate(cert.validFrom) ?? new Date(NaN);
}

export function notAfterOf(cert: X509Certificate): Date {
  return readPrintedDate(cert.validTo) ?? new Date(NaN);
}

/**
 * Names and URIs from a certificate are quoted cut to this: whoever made it chose them (a CA's
 * answer, a file), and a refusal is logged on every retry and kept for /identity.
 */
const QUOTED_LIMIT = 256;

function describe(cert: X509Certificate): string {
  const cn = /CN=([^\n]+)/.exec(cert.subject)?.[1];
  return `${cn ? `"${clip(cn, QUOTED_LIMIT)}"` : 'certificate'} (serial ${cert.serialNumber.toLowerCase()})`;
}

function parseCertificates(pem: string, what: string, path: string | undefined): X509Certificate[] {
  // a file cut short (read while written in place) must be refused, not read as one root fewer
  if (hasUnterminatedPemBlock(pem)) refuse(`the ${what} has a PEM block that never ends (no -----END line): a file cut short, or read while it was being written`);
  const texts = splitPemCertificates(pem);
  if (texts.length === 0) refuse(`the ${what} holds no PEM CERTIFICATE block`);
  return texts.map((text, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(text);
    } catch (err) {
      return refuse(`certificate ${i + 1} of the ${what} cannot be parsed: ${(err as Error).message}`);
    }
    // NaN dates compare false both ways: such a certificate would pass every date check below
    const dates = unreadableDatesProblem(cert);
    if (dates !== undefined) refuse(`${path ? `the certificate at ${path} (certificate ${i + 1} of the ${what})` : `certificate ${i + 1} of the ${what}`} ${dates}`);
    return cert;
  });
}

function parsePrivateKey(pem: string): KeyObject {
  const encrypted = encryptedKeyProblem(pem);
  if (encrypted !== undefined) refuse(encrypted);
  const keys = pemBlocks(pem).filter((b) => b.label.endsWith('PRIVATE KEY'));
  if (keys.length !== 1) refuse(`the key file must hold exactly one PEM private key, it holds ${keys.length}`);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    return refuse(`the private key cannot be read: ${(err as Error).message}`);
  }
}

function checkDates(cert: X509Certificate, now: Date): void {
  if (notAfterOf(cert) <= now) {
    throw Object.assign(new MeshcarError('identity_invalid', `${describe(cert)} expired at ${notAfterOf(cert).toISOString()}`), { expiredAtMs: notAfterOf(cert).getTime() });
  }
  if (notBeforeOf(cert) > now) {
    // the time it becomes valid goes with the refusal: a watcher of files can look again then
    throw Object.assign(new MeshcarError('identity_invalid', `${describe(cert)} is not valid before ${notBeforeOf(cert).toISOString()}`), { notValidBeforeMs: notBeforeOf(cert).getTime() });
  }
}

/** Issued by that signer, by name, key identifier and signature (OpenSSL's checks, both). */
function issuedBy(cert: X509Certificate, signer: X509Certificate): boolean {
  return cert.checkIssued(signer) && cert.verify(signer.publicKey);
}

/** The certificates of a path, in order from the leaf up to the bundle root it ends at. */
type Path = readonly X509Certificate[];

/** The refusal of a path whose last bundle certificate is not self-signed, and no root of the bundle issued it. */
function notARoot(cert: X509Certificate): string {
  return `the bundle certificate ${describe(cert)} is not a root (it is not self-signed, issuer ${clip(cert.issuer.replace(/\n/g, ', '), QUOTED_LIMIT)}), and the root that issued it is not in the bundle: TLS peers anchor only on a self-signed root; add that root to the bundle`;
}

/**
 * Walks leaf → intermediates → a root of the bundle. Intermediates may arrive in any order;
 * each step must verify by signature, and every signer must be a CA and within its dates. The
 * path ends at a self-signed root of the bundle: OpenSSL, Node's TLS on both ends, anchors
 * nowhere else (partial chains are off), so a bundle whose certificate above ours is an
 * intermediate with no root beside it (a cert-manager CA issuer's ca.crt) was taken here and
 * then failed every handshake (unknown_ca one way, UNABLE_TO_GET_ISSUER_CERT the other). An
 * intermediate in the bundle is walked through, as OpenSSL does, up to its root.
 */
function verifyChain(leaf: X509Certificate, intermediates: X509Certificate[], roots: X509Certificate[], now: Date): Path {
  const unused = [...intermediates];
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    // a self-signed one first: a rotation's cross certificate has the new root's name and key
    const root = roots.find((r) => issuedBy(current, r) && issuedBy(r, r)) ?? roots.find((r) => issuedBy(current, r) && r !== current);
    if (root) {
      if (!root.ca) refuse(`the bundle certificate ${describe(root)} is not a CA certificate`);
      checkDates(root, now);
      if (issuedBy(root, root)) return [...path, root];
      // bundle certificates that sign each other, and no root: the walk would go round
      if (path.includes(root)) return refuse(notARoot(current));
      // an intermediate in the bundle: on to the root that issued it
      path.push(root);
      current = root;
      continue;
    }
    if (current !== leaf && roots.includes(current)) return refuse(notARoot(current));
    const index = unused.findIndex((c) => issuedBy(current, c));
    if (index === -1) {
      return refuse(`${describe(current)} was not issued by any certificate of the chain or the bundle (issuer ${clip(current.issuer.replace(/\n/g, ', '), QUOTED_LIMIT)})`);
    }
    const signer = unused.splice(index, 1)[0] as X509Certificate;
    if (!signer.ca) refuse(`${describe(signer)} signs ${describe(current)} but is not a CA certificate`);
    checkDates(signer, now);
    path.push(signer);
    current = signer;
  }
  return refuse(`the chain is longer than ${MAX_CHAIN_DEPTH} signers without reaching the bundle`);
}

/**
 * When the set works: from the latest notBefore to the earliest notAfter of its path (leaf,
 * intermediates, the bundle root it ends at). Peers judge the path as a whole: OpenSSL refuses
 * it once any certificate on it has expired (CERT_HAS_EXPIRED), and a meshcar peer narrows a
 * caller's window the same way (peer-validity.ts). The root is the peers' own anchor, but ours
 * ending earlier means the path we present breaks then, so it counts as well. A certificate
 * presented beside the path (a root rotation's cross certificate, which our CA clamps to the
 * old root) does not: the path to our bundle's root does without it.
 */
function windowOf(path: Path): { validFrom: Date; notAfter: Date; endsWith: string } {
  const leaf = path[0] as X509Certificate;
  const root = path[path.length - 1] as X509Certificate;
  let validFrom = notBeforeOf(leaf);
  let ending = leaf;
  for (const cert of path) {
    if (notBeforeOf(cert) > validFrom) validFrom = notBeforeOf(cert);
    // strictly earlier: a signer ending in the leaf's second leaves the leaf named
    if (notAfterOf(cert) < notAfterOf(ending)) ending = cert;
  }
  const role = ending === leaf ? 'the leaf' : ending === root ? 'the bundle root' : "the chain's";
  return { validFrom, notAfter: notAfterOf(ending), endsWith: `${role} ${describe(ending)}` };
}

/**
 * Checks that the set is one coherent SVID for expectedSpiffeId at `now`, and returns it parsed.
 * Throws MeshcarError('identity_invalid') naming the first thing wrong.
 */
export function validateSvid(material: SvidMaterial, expectedSpiffeId: string, now: Date = new Date()): Svid {
  const chain = parseCertificates(material.chainPem, 'certificate chain', material.paths?.chain);
  const roots = parseCertificates(material.bundlePem, 'trust bundle', material.paths?.bundle);
  const leaf = chain[0] as X509Certificate;
  const key = parsePrivateKey(material.privateKeyPem);

  // (describe names a certificate without a CN 'certificate (serial …)': said once here)
  if (!leaf.checkPrivateKey(key)) refuse(`the private key does not match ${/CN=/.test(leaf.subject) ? `the certificate ${describe(leaf)}` : `the ${describe(leaf)}`}`);
  if (leaf.ca || basicConstraintsCa(leaf.raw)) refuse(`${describe(leaf)} is a CA certificate; an X509-SVID leaf must have cA=false`);
  // a leaf that may sign, or may not sign a handshake, is refused by every peer
  // (peer-identity.ts): say so here, at load
  const signing = svidLeafProblem(leaf.raw, false);
  if (signing !== undefined) refuse(`${describe(leaf)} is no X509-SVID leaf: ${signing}`);
  // absent EKU means any purpose; present, it must allow both directions of mutual TLS
  const eku = leaf.keyUsage;
  if (eku && !(eku.includes(EKU_SERVER_AUTH) && eku.includes(EKU_CLIENT_AUTH))) {
    refuse(`${describe(leaf)} lacks serverAuth or clientAuth in its extended key usage`);
  }

  const uris = uriSans(leaf);
  if (uris.length !== 1) refuse(`${describe(leaf)} carries ${uris.length} URI SANs; an X509-SVID carries exactly one`);
  if (uris[0] !== expectedSpiffeId) refuse(`${describe(leaf)} is for ${clip(uris[0] as string, QUOTED_LIMIT)}, expected ${expectedSpiffeId}`);

  checkDates(leaf, now);
  const path = verifyChain(leaf, chain.slice(1), roots, now);
  // OpenSSL would refuse to load such a leaf or chain (TLS_POLICY's security level), or every
  // peer would refuse the path: said here, in words, at load
  for (const cert of path) {
    const weak = tlsKeyProblem(cert.publicKey);
    if (weak !== undefined) refuse(`${describe(cert)} has ${weak}: meshcar's TLS takes RSA keys of 2048 bits or more and EC keys of 224 bits or more (OpenSSL security level 2), for every certificate of the path to the bundle root`);
  }
  const { validFrom, notAfter, endsWith } = windowOf(path);

  return Object.freeze({
    // normalised PEM: exactly the blocks we validated, nothing a TLS stack could read differently
    privateKeyPem: material.privateKeyPem,
    chainPem: chain.map((c) => c.toString()).join(''),
    bundlePem: roots.map((c) => c.toString()).join(''),
    spiffeId: expectedSpiffeId,
    serialHex: leaf.serialNumber.toLowerCase(),
    notBefore: notBeforeOf(leaf),
    notAfter,
    leafNotAfter: notAfterOf(leaf),
    endsWith,
    validFrom,
    leaf,
  });
}

/**
 * validateSvid, except that a set refused only for starting in the future, at most `aheadMs`
 * from `now`, is returned (its validFrom ahead): the caller keeps it and serves it from then.
 * One starting later is refused with the distance named, as a clock to fix.
 */
export function validateSvidSoon(material: SvidMaterial, expectedSpiffeId: string, now: Date = new Date(), aheadMs: number = MAX_NOT_YET_VALID_MS): Svid {
  let at = now;
  // each turn moves `at` to a later notBefore (leaf, then its signers): bounded by the chain
  for (let turn = 0; ; turn++) {
    try {
      return validateSvid(material, expectedSpiffeId, at);
    } catch (err) {
      const from = notValidBeforeMs(err);
      if (from === undefined || from <= at.getTime() || turn > MAX_CHAIN_DEPTH) throw err;
      if (from - now.getTime() > aheadMs) {
        throw new MeshcarError(
          'identity_invalid',
          `${describeError(err)}, ${formatApproxDuration(from - now.getTime())} ahead of this host's clock (meshcar waits at most ${formatApproxDuration(aheadMs)} for a certificate to start): the issuer's clock or this host's is wrong; set both right (NTP)`,
          { cause: err },
        );
      }
      at = new Date(from);
    }
  }
}

export function lifetimeMs(svid: Svid): number {
  return svid.notAfter.getTime() - svid.notBefore.getTime();
}

/** Milliseconds of validity left at `now` (negative once expired). */
export function remainingMs(svid: Svid, now: Date = new Date()): number {
  return svid.notAfter.getTime() - now.getTime();
}

/** How many roots the SVID's bundle holds (2 during a CA root rotation). */
export function rootCount(svid: Svid): number {
  return splitPemCertificates(svid.bundlePem).length;
}

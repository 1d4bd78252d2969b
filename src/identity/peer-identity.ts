// Who is on the other end of a TLS connection, by SPIFFE ID. Node's TLS verifies the chain
// and checks DNS host names; URI SANs are ours to check, on both sides: the server reads the
// caller's ID from its client certificate, the client pins the server's ID (never a hostname).

import type { PeerCertificate, TLSSocket } from 'node:tls';
import { X509Certificate, createHash } from 'node:crypto';
import { MeshcarError } from '../errors.js';
import { clip } from '../clip.js';
import { uriSans } from '../pki/x509-read.js';
import { sessionPeerCertificate } from '../pki/session-peer.js';
import { peerX509 } from '../pki/peer-x509.js';
import { tryParseSpiffeId, type SpiffeId } from './spiffe-id.js';
import { svidLeafProblem } from './svid-leaf.js';
import { pathWindow, peerPathValidity, remember, validityProblem, type ValidityWindow } from './peer-validity.js';
import type { TlsFailureReason } from '../metrics/traffic.js';
import { classifyVerdict } from '../tls-failures/codes.js';

/** Matches the `reason` label of meshcar_tls_handshake_failures_total. */
export type PeerRefusalReason = TlsFailureReason;

export type PeerIdentityResult =
  | {
      readonly ok: true;
      readonly id: SpiffeId;
      readonly certificate: X509Certificate;
      /** When the peer's certificate path expires (ms since the epoch): the connection must not outlive it. */
      readonly expiresAtMs: number;
    }
  | { readonly ok: false; readonly reason: PeerRefusalReason; readonly message: string };

// A busy listener sees the same few peer certificates on every connection; reading the SANs
// (and whether it is a signing certificate) once per certificate keeps the hot path to a
// fingerprint lookup. Bounded, oldest out first.
const CACHE_LIMIT = 1024;

/** What a peer certificate asserts: its URI SANs, and why it is no leaf (svid-leaf.ts), if it is none. */
interface PeerReading {
  readonly uris: string[];
  readonly signing: string | undefined;
}
const readings = new Map<string, PeerReading>();

function cachedReading(fingerprint: string, certificate: () => X509Certificate): PeerReading {
  let reading = readings.get(fingerprint);
  if (reading === undefined) {
    const cert = certificate();
    reading = { uris: uriSans(cert), signing: svidLeafProblem(cert.raw, cert.ca) };
    if (readings.size >= CACHE_LIMIT) readings.delete(readings.keys().next().value as string);
    readings.set(fingerprint, reading);
  }
  return reading;
}

/** The most of a peer's URI SAN (or the parser's words quoting it) an error message carries. */
const MAX_QUOTED_SAN = 256;

/** The single SPIFFE ID a certificate asserts, or why it asserts none we accept. */
export function spiffeIdOfUris(uris: readonly string[], trustDomain: string): SpiffeId | string {
  if (uris.length === 0) return 'the certificate has no URI SAN, so no SPIFFE ID';
  if (uris.length > 1) return `the certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`;
  const id = tryParseSpiffeId(uris[0] as string);
  // the peer chose the SAN (up to the certificate's size): quoted clipped, as tls-failures/describe.ts does
  if (typeof id === 'string') return `the URI SAN "${clip(uris[0] as string, MAX_QUOTED_SAN)}" is not a SPIFFE ID: ${clip(id, MAX_QUOTED_SAN)}`;
  if (id.trustDomain !== trustDomain) return `${id.uri} belongs to trust domain "${id.trustDomain}", not "${trustDomain}"`;
  // spiffe://td names the trust domain (a signing certificate's ID), never a workload (X509-SVID §3.1, §5.2)
  if (id.path === '') return `${id.uri} is the trust domain's own ID, which names no workload: an SVID leaf's ID has a path`;
  return id;
}

/** A certificate's SPIFFE ID as a leaf: a signing certificate has none, whatever its URI SAN. */
function spiffeIdOfReading(reading: PeerReading, trustDomain: string): SpiffeId | string {
  return reading.signing ?? spiffeIdOfUris(reading.uris, trustDomain);
}

export function spiffeIdOfCertificate(cert: X509Certificate, trustDomain: string): SpiffeId | string {
  return spiffeIdOfReading(cachedReading(cert.fingerprint256, () => cert), trustDomain);
}

/**
 * The callers' leaf certificates (KnownLeaf), by the SHA-256 of their DER (leafKey). Node's
 * getPeerX509Certificate() also copies the issuer the peer presented, and on OpenSSL 3.0 that
 * copy decodes its public key again (~0.3-0.4 ms of a ~3-4 ms handshake, measured side by
 * side); the leaf's DER, read out of the TLS session (session-peer.ts: ~40 µs, where
 * getPeerCertificate() took 150-240 µs), names the entry. A leaf is kept with its verified
 * path's window (its own dates, or shorter where an issuer cuts it short: a CA made with the
 * same lifetime a second before its leaves, as openssl-made PKIs often are) for the trust
 * bundle that verified it: that path proves the leaf certified over that window under that
 * bundle, whichever issuer copy a later connection presents, so the window never outlasts a
 * path we accepted. Once it no longer holds (past its end, or another bundle), the leaf is read
 * with its presented path again. Bounded, least recently used out first.
 */
const LEAF_LIMIT = 1024;

/**
 * A kept leaf and what every connection presenting it would work out again: its path's
 * window and its SPIFFE ID (or why none) for the trust domain it was last asked about.
 */
interface KnownLeaf {
  readonly cert: X509Certificate;
  readonly window: ValidityWindow;
  /** The bundle that verified the path the window was read from: it holds under that bundle only. */
  readonly anchorsPem: string;
  trustDomain?: string;
  id?: SpiffeId | string;
}
const leaves = new Map<string, KnownLeaf>();

/**
 * A key for the peer's leaf: the SHA-256 of its DER, read out of the TLS session (2-3 µs to
 * hash; the DER itself as the key would let a caller with large leaves make every lookup slow,
 * as V8 hashes strings over 16 K characters by their length alone). Undefined when the session
 * does not show the certificate (never seen from OpenSSL).
 */
function leafKey(socket: TLSSocket): string | undefined {
  // null once the socket's handle is gone
  const session = socket.getSession() as Buffer | null | undefined;
  if (!session) return undefined;
  try {
    const der = sessionPeerCertificate(session);
    return der && createHash('sha256').update(der).digest('base64');
  } finally {
    session.fill(0); // the session's DER holds the master secret
  }
}

/** Whether a kept leaf's window may stand for this connection (`anchorsPem`: the bundle verifying it). */
function stillHolds(known: KnownLeaf, anchorsPem: string | undefined, nowMs: number): boolean {
  return known.anchorsPem === anchorsPem && validityProblem(known.window, nowMs) === undefined;
}

/**
 * The caller's leaf: kept (with its window and ID), or read from the socket with its presented
 * path. A leaf is kept only at a full handshake: a resumed session shows the leaf alone, whose
 * own dates would hide an issuer that expires first (peer-validity.ts remembers that window).
 * And only when OpenSSL verified its path under a bundle we know, for that bundle, also when
 * the window is the leaf's own dates: a path verified under a bundle certifies the leaf over
 * its window under that bundle only. Kept "for any bundle", a leaf first seen through a
 * long-lived issuer under a root since retired kept that window when the only path left ran
 * through a shorter-lived issuer (same key, re-signed under the new root): its connections
 * outlived that issuer, and so did its resumptions. Kept from a handshake that was not
 * verified, a leaf sent without its issuer kept its own dates for the next caller that sent
 * the issuer that ends first (and filled the cache with leaves nobody trusts).
 */
function peerLeaf(socket: TLSSocket, resumed: boolean, anchorsPem: string | undefined, nowMs: number): KnownLeaf | X509Certificate | undefined {
  const key = leafKey(socket);
  // no key: read as it is, every time (no certificate: undefined)
  if (key === undefined) return peerX509(socket);
  const known = leaves.get(key);
  if (known !== undefined) {
    leaves.delete(key);
    if (stillHolds(known, anchorsPem, nowMs)) {
      leaves.set(key, known);
      return known;
    }
  }
  const cert = peerX509(socket);
  if (cert === undefined || resumed) return cert;
  if (anchorsPem === undefined || !socket.authorized) return cert;
  const window = pathWindow(cert, nowMs, anchorsPem);
  if (window.problem !== undefined) return cert;
  if (leaves.size >= LEAF_LIMIT) leaves.delete(leaves.keys().next().value as string);
  const kept: KnownLeaf = { cert, window, anchorsPem };
  leaves.set(key, kept);
  return kept;
}

/** The SPIFFE ID of a kept leaf in `trustDomain`, worked out once per trust domain asked. */
function knownLeafId(known: KnownLeaf, trustDomain: string): SpiffeId | string {
  if (known.trustDomain !== trustDomain || known.id === undefined) {
    known.id = spiffeIdOfCertificate(known.cert, trustDomain);
    known.trustDomain = trustDomain;
  }
  return known.id;
}

/**
 * Maps Node's chain-verification verdict (socket.authorizationError, a code; or the verdict's
 * Error, whose OpenSSL text names what Node calls UNSPECIFIED) to a refusal reason.
 */
export function classifyAuthorizationError(error: Error | string | null | undefined): PeerRefusalReason {
  return classifyVerdict(error) ?? 'other';
}

/**
 * The caller's identity on an accepted TLS socket (after 'secureConnection'). Never throws:
 * this runs on every inbound connection, and a refusal is an ordinary outcome. `anchorsPem`:
 * the trust bundle the server verifies callers against (IdentityTls.anchorsPem); without it
 * (the moments after a bundle change), every leaf is read with its path on every connection.
 */
export function peerIdentity(socket: TLSSocket, trustDomain: string, nowMs = Date.now(), anchorsPem?: string): PeerIdentityResult {
  const resumed = socket.isSessionReused();
  const leaf = peerLeaf(socket, resumed, anchorsPem, nowMs);
  if (!leaf) return { ok: false, reason: 'no_client_cert', message: 'the peer presented no certificate' };
  // with rejectUnauthorized the handshake already failed; without it we must not trust the chain
  if (!socket.authorized) {
    const error = socket.authorizationError;
    return { ok: false, reason: classifyAuthorizationError(error), message: `the peer certificate is not trusted: ${String(error)}` };
  }
  // `authorized` on a resumed session is the first handshake's verdict: the dates are ours to check
  const known = leaf instanceof X509Certificate ? undefined : leaf;
  const cert = known?.cert ?? (leaf as X509Certificate);
  // a kept leaf's window (its verified path's, under this bundle) stands also
  // on a resumed session; a full handshake's is remembered for the resumptions of its
  // session, as peerPathValidity() does
  const window = known?.window ?? peerPathValidity(cert, resumed, nowMs, anchorsPem);
  if (known !== undefined && !resumed) remember(cert.fingerprint256, window);
  const problem = validityProblem(window, nowMs);
  if (problem !== undefined) return { ok: false, reason: window.problem !== undefined ? 'other' : problem.startsWith('expired') ? 'expired' : 'not_yet_valid', message: `the peer certificate path ${problem}${resumed ? ' (resumed TLS session)' : ''}` };
  const id = known ? knownLeafId(known, trustDomain) : spiffeIdOfCertificate(cert, trustDomain);
  if (typeof id === 'string') return { ok: false, reason: 'bad_identity', message: id };
  return { ok: true, id, certificate: cert, expiresAtMs: window.notAfterMs };
}

/**
 * A `checkServerIdentity` for outbound TLS that accepts exactly one server: the one whose
 * certificate carries `expectedId` as its only URI SAN. The hostname is ignored on purpose
 * (endpoints are IPs and pool names; the identity is the SPIFFE ID).
 *
 * Node skips checkServerIdentity on a resumed TLS session, so a client that caches sessions
 * must keep one session cache per expected ID (or none), or re-check the peer certificate.
 */
export function verifyServerSpiffeId(expectedId: string): (hostname: string, cert: PeerCertificate) => Error | undefined {
  const expected = tryParseSpiffeId(expectedId);
  if (typeof expected === 'string') throw new MeshcarError('identity_invalid', `"${expectedId}" is not a SPIFFE ID: ${expected}`);
  return (_hostname, cert) => {
    // tlsReason: the handshake failure's label (no usable ID, or a valid one that is not the expected)
    const refuse = (message: string, tlsReason: TlsFailureReason) => Object.assign(new MeshcarError('upstream_identity_mismatch', message), { tlsReason });
    if (!cert || !cert.raw) return refuse(`expected ${expectedId}, but the server presented no certificate`, 'bad_identity');
    const id = spiffeIdOfReading(cachedReading(cert.fingerprint256, () => new X509Certificate(cert.raw)), expected.trustDomain);
    if (typeof id === 'string') return refuse(`expected ${expectedId}: ${id}`, 'bad_identity');
    if (id.uri !== expectedId) return refuse(`expected ${expectedId}, but the server is ${id.uri}`, 'identity_mismatch');
    return undefined;
  };
}

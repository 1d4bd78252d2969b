// When a peer's certificate path is valid: the window in which its leaf and every issuer it
// presented are all within their notBefore/notAfter. Checked by us on every connection,
// because Node's `socket.authorized` on a resumed TLS session is the first handshake's verdict
// (OpenSSL keeps it in the session), so a leaf that expired since would otherwise pass.
//
// A resumed session carries only the leaf (a ticket does not hold the peer's chain), so the
// window seen at the full handshake is remembered per leaf. Should a busy listener have
// forgotten it, the leaf's own dates are used: our CA never lets a leaf outlive its issuer,
// nor an issuer its root, so only a path our CA does not make could lose a check that way.
// (Refusing instead could shut a caller out for as long as its tickets last: a refused
// resumption may still have handed it a new ticket of the same kind.)
// Trust anchors are not in the presented path; OpenSSL checked their dates at the full handshake.

import type { X509Certificate } from 'node:crypto';

export interface ValidityWindow {
  /** The latest notBefore on the path (ms since the epoch). */
  readonly notBeforeMs: number;
  /** The earliest notAfter on the path: from then on the path is expired. */
  readonly notAfterMs: number;
}

/** Leaf plus intermediates; a peer that presents a longer path is judged on these. */
export const MAX_PATH = 4;
// a window is two numbers: room for the current certificates of thousands of peers
const CACHE_LIMIT = 4096;
const windows = new Map<string, ValidityWindow>();

/** The window a full handshake saw for this leaf, for its resumed sessions. Least recently seen out first: a leaf in use keeps its entry. */
export function remember(fingerprint: string, window: ValidityWindow): void {
  if (!windows.delete(fingerprint) && windows.size >= CACHE_LIMIT) windows.delete(windows.keys().next().value as string);
  windows.set(fingerprint, window);
}

/** The window of the path the peer presented (leaf first, issuers through `issuerCertificate`). */
export function pathWindow(leaf: X509Certificate): ValidityWindow {
  let notBeforeMs = -Infinity;
  let notAfterMs = Infinity;
  let cert: X509Certificate | undefined = leaf;
  for (let depth = 0; cert !== undefined && depth < MAX_PATH; depth++) {
    notBeforeMs = Math.max(notBeforeMs, Date.parse(cert.validFrom));
    notAfterMs = Math.min(notAfterMs, Date.parse(cert.validTo));
    const issuer: X509Certificate | undefined = cert.issuerCertificate;
    // a self-signed certificate is its own issuer: the path ends there
    cert = issuer === undefined || issuer.fingerprint256 === cert.fingerprint256 ? undefined : issuer;
  }
  return { notBeforeMs, notAfterMs };
}

/**
 * The validity window of the peer's certificate path on a TLS connection whose chain OpenSSL
 * has verified. `leaf`: socket.getPeerX509Certificate(); `resumed`: socket.isSessionReused().
 */
export function peerPathValidity(leaf: X509Certificate, resumed: boolean): ValidityWindow {
  const fingerprint = leaf.fingerprint256;
  const known = resumed ? windows.get(fingerprint) : undefined;
  const window = known ?? pathWindow(leaf);
  remember(fingerprint, window);
  return window;
}

/** Why the path is not valid at `nowMs` (OpenSSL's rule: expired from notAfter on), or undefined. */
export function validityProblem(window: ValidityWindow, nowMs: number): string | undefined {
  if (nowMs >= window.notAfterMs) return `expired at ${new Date(window.notAfterMs).toISOString()}`;
  if (nowMs < window.notBeforeMs) return `is not valid before ${new Date(window.notBeforeMs).toISOString()}`;
  return undefined;
}

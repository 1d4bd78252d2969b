// When a peer's certificate path is valid: the window in which its leaf and every other
// certificate it presented that was valid at the handshake are all within their
// notBefore/notAfter (pathWindow: the order sent is not trusted). Checked by us on every connection,
// because Node's `socket.authorized` on a resumed TLS session is the first handshake's verdict
// (OpenSSL keeps it in the session), so a leaf that expired since would otherwise pass.
//
// A resumed session carries only the leaf (a ticket does not hold the peer's chain), so the
// window seen at the full handshake is remembered per leaf. Should a busy listener have
// forgotten it, the leaf's own dates are used: our CA never lets a leaf outlive its issuer,
// nor an issuer its root, so only a path our CA does not make could lose a check that way.
// (Refusing instead could shut a caller out for as long as its tickets last: a refused
// resumption may still have handed it a new ticket of the same kind.)
// The bundle's own certificates the path ends at (its root, an intermediate the bundle holds
// that the peer did not send) bound the window too: OpenSSL checked their dates at the full
// handshake only, and a resumed session or an open connection went on past a root's end.

import type { X509Certificate } from 'node:crypto';
import { readPrintedDate } from '../pki/cert-dates.js';
import { bundleRoots, nameKey } from '../pki/chain-to-roots.js';

export interface ValidityWindow {
  /** The latest notBefore on the path (ms since the epoch). */
  readonly notBeforeMs: number;
  /** The earliest notAfter on the path: from then on the path is expired. */
  readonly notAfterMs: number;
  /** Set when the presented certificates could not be judged at all: the path is refused. */
  readonly problem?: string;
}

/** Leaf plus intermediates; a peer that presents a longer path is judged on these. */
export const MAX_PATH = 4;
/**
 * Certificates a peer may present (its leaf included) for its window to be worked out: one
 * that sends more is refused (OpenSSL's own verification goes no deeper than 100; real paths
 * are two to four long).
 */
export const MAX_PRESENTED = 10;
/**
 * How long before the handshake's `nowMs` a presented certificate may have expired and still
 * count: OpenSSL checked the path a moment earlier, when one just expired was still valid.
 */
const EXPIRED_SLACK_MS = 10 * 60_000;
// a window is two numbers: room for the current certificates of thousands of peers
const CACHE_LIMIT = 4096;
const windows = new Map<string, ValidityWindow>();

/** The window a full handshake saw for this leaf, for its resumed sessions. Least recently seen out first: a leaf in use keeps its entry. */
export function remember(fingerprint: string, window: ValidityWindow): void {
  if (!windows.delete(fingerprint) && windows.size >= CACHE_LIMIT) windows.delete(windows.keys().next().value as string);
  windows.set(fingerprint, window);
}

/** A printed date (validFrom/validTo) in ms since the epoch; NaN when this host cannot read it. */
export function printedMs(text: string): number {
  return readPrintedDate(text)?.getTime() ?? NaN;
}

/**
 * The window of the path a peer's leaf was accepted on at a full handshake (`nowMs`): the
 * leaf's own dates, narrowed by every other certificate it presented that is valid now. Node
 * links the presented certificates (`issuerCertificate`) in the order sent, whoever signed
 * what, and OpenSSL builds its path from them in any order: walking the links as a path let a
 * caller hide its issuer behind a repeated leaf ([L, L, I]: the walk stopped at the repeat) and
 * keep its connection past the issuer's end. Whichever presented certificates OpenSSL used,
 * each was valid at this handshake, so the path's window lies within theirs; one that is not
 * yet valid, or expired well before (an old intermediate sent beside its successor), is no
 * part of an accepted path and is passed over. Extra valid certificates can only narrow the
 * window. The outbound judges an upstream's path with it too (ticket-validity.ts).
 */
export function pathWindow(leaf: X509Certificate, nowMs: number, anchorsPem?: string, chain: PresentedChain = presentedChain(leaf)): ValidityWindow {
  let notBeforeMs = printedMs(leaf.validFrom);
  let notAfterMs = printedMs(leaf.validTo);
  // OpenSSL refuses such a leaf at the handshake; were one let through, NaN passes every check
  if (Number.isNaN(notBeforeMs) || Number.isNaN(notAfterMs)) return { notBeforeMs: 0, notAfterMs: 0, problem: 'has a validity date this host cannot read' };
  const others = chain.certs.slice(1);
  const bySubject = anchorsPem === undefined ? NO_ANCHORS : anchorsBySubject(anchorsPem);
  for (const c of others) {
    // a copy of a trust anchor (a root rotation's cross certificate: the new root's name and key,
    // signed by the old root) is no part of the path: OpenSSL ends it at the anchor itself.
    // Counted, every connection was cut at the old root's end mid-rotation, and refused for the
    // slack's 10 minutes after it
    if (copyOfAnchor(c, bySubject)) continue;
    const from = printedMs(c.validFrom);
    const to = printedMs(c.validTo);
    // one that expired within the slack counts (OpenSSL verified a moment earlier), even beside
    // a copy valid now of the same name and key: that copy's signature is never checked here
    // (the anchors are not at hand), and a caller holding back its handshake's end while its
    // issuer expired passed the issuer over with a forged copy and kept a leaf's whole life (a
    // review). A stale chain file's old copy is refused for the slack's 10 minutes, then passed over.
    if (from <= nowMs && to > nowMs - EXPIRED_SLACK_MS) {
      notBeforeMs = Math.max(notBeforeMs, from);
      notAfterMs = Math.min(notAfterMs, to);
    }
  }
  for (const anchor of anchorsReached(chain.certs, bySubject, nowMs)) {
    notBeforeMs = Math.max(notBeforeMs, printedMs(anchor.validFrom));
    notAfterMs = Math.min(notAfterMs, printedMs(anchor.validTo));
  }
  if (chain.overflow) return { notBeforeMs, notAfterMs, problem: `presented more than ${MAX_PRESENTED} certificates` };
  return { notBeforeMs, notAfterMs };
}

const NO_ANCHORS = new Map<string, Anchor[]>();

/**
 * The bundle certificates the presented path goes on to, up to its root: each the issuer (by
 * name and key identifier: OpenSSL verified the signatures at this handshake, so no signature
 * is checked again) of a presented certificate or of the one before, inside its dates now;
 * of several (a root re-issued with the same name and key), the one that ends last, as the
 * one OpenSSL would have taken is valid now. A presented copy of an anchor starts nothing: the
 * path ends at the anchor itself (pathWindow). Looked up by issuer name: a bundle of the
 * system's 145 roots made a scan of all of them cost 1 ms per full handshake.
 */
function anchorsReached(presented: readonly X509Certificate[], bySubject: ReadonlyMap<string, readonly Anchor[]>, nowMs: number): X509Certificate[] {
  if (bySubject.size === 0) return [];
  const reached: X509Certificate[] = [];
  // what counted in the window: an old intermediate sent beside its successor starts nothing
  let level = presented.filter((c, i) => !copyOfAnchor(c, bySubject) && (i === 0 || (printedMs(c.validFrom) <= nowMs && printedMs(c.validTo) > nowMs - EXPIRED_SLACK_MS)));
  for (let depth = 0; depth < MAX_PATH && level.length > 0; depth++) {
    const next: X509Certificate[] = [];
    for (const cert of level) {
      let best: Anchor | undefined;
      for (const anchor of bySubject.get(nameKey(cert.issuer)) ?? []) {
        if (anchor.fromMs > nowMs || anchor.toMs <= nowMs - EXPIRED_SLACK_MS) continue;
        if (anchor.cert === cert || reached.includes(anchor.cert) || !issuedBy(cert, anchor.cert)) continue;
        if (best === undefined || anchor.toMs > best.toMs) best = anchor;
      }
      if (best === undefined) continue;
      reached.push(best.cert);
      // a root (self-issued) ends the path; an intermediate of the bundle goes on to its issuer
      if (!issuedBy(best.cert, best.cert)) next.push(best.cert);
    }
    level = next;
  }
  return reached;
}

/** `issuer`'s name and key identifier match what `cert` names as its issuer (X509Certificate.checkIssued: no signature). */
function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer);
  } catch {
    return false;
  }
}

/** The certificates a peer presented, leaf first, at most MAX_PRESENTED; `overflow`: it sent more. */
export interface PresentedChain {
  readonly certs: readonly X509Certificate[];
  readonly overflow: boolean;
}

/**
 * The presented certificates as Node links them: in the order sent, the last to nothing. A
 * repeat of any one is walked past, not taken for the end: [L, S, S, I], S self-signed and made
 * by the peer, hid I behind the repeat (a review), as [L, L, I] did before; only a certificate
 * linked to itself ends the walk.
 */
export function presentedChain(leaf: X509Certificate): PresentedChain {
  const certs = [leaf];
  let next = leaf.issuerCertificate;
  while (next !== undefined && next !== certs[certs.length - 1] && certs.length < MAX_PRESENTED) {
    certs.push(next);
    next = next.issuerCertificate;
  }
  return { certs, overflow: next !== undefined && next !== certs[certs.length - 1] };
}

/** A bundle certificate with its dates read once. */
interface Anchor {
  readonly cert: X509Certificate;
  readonly fromMs: number;
  readonly toMs: number;
}

/** The trust anchors of a bundle by subject, parsed once per bundle (one bundle is in force at a time). */
let anchorCache: { pem: string; bySubject: Map<string, Anchor[]> } | undefined;
function anchorsBySubject(pem: string): Map<string, Anchor[]> {
  if (anchorCache?.pem !== pem) {
    const bySubject = new Map<string, Anchor[]>();
    for (const cert of bundleRoots(pem)) {
      const key = nameKey(cert.subject);
      const anchor = { cert, fromMs: printedMs(cert.validFrom), toMs: printedMs(cert.validTo) };
      const list = bySubject.get(key);
      if (list === undefined) bySubject.set(key, [anchor]);
      else list.push(anchor);
    }
    anchorCache = { pem, bySubject };
  }
  return anchorCache.bySubject;
}

/** `c` is a copy of an anchor of the bundle (looked up by its subject: a scan of every anchor cost per presented certificate). */
function copyOfAnchor(c: X509Certificate, bySubject: ReadonlyMap<string, readonly Anchor[]>): boolean {
  const named = bySubject.get(nameKey(c.subject));
  return named !== undefined && named.some((a) => isCopyOf(c, a.cert));
}

/** `c` has `anchor`'s name and key. A key Node cannot read (a peer's, sent to test us) is no copy: reading it throws. */
function isCopyOf(c: X509Certificate, anchor: X509Certificate): boolean {
  if (c.subject !== anchor.subject) return false;
  try {
    return c.publicKey.equals(anchor.publicKey);
  } catch {
    return false;
  }
}

/**
 * The validity window of the peer's certificate path on a TLS connection whose chain OpenSSL
 * has verified. `leaf`: socket.getPeerX509Certificate(); `resumed`: socket.isSessionReused().
 */
export function peerPathValidity(leaf: X509Certificate, resumed: boolean, nowMs = Date.now(), anchorsPem?: string): ValidityWindow {
  const fingerprint = leaf.fingerprint256;
  const known = resumed ? windows.get(fingerprint) : undefined;
  const window = known ?? pathWindow(leaf, nowMs, anchorsPem);
  remember(fingerprint, window);
  return window;
}

/** Why the path is not valid at `nowMs` (OpenSSL's rule: expired from notAfter on), or undefined. */
export function validityProblem(window: ValidityWindow, nowMs: number): string | undefined {
  if (window.problem !== undefined) return window.problem;
  if (nowMs >= window.notAfterMs) return `expired at ${new Date(window.notAfterMs).toISOString()}`;
  if (nowMs < window.notBeforeMs) return `is not valid before ${new Date(window.notBeforeMs).toISOString()}`;
  return undefined;
}

// How long an upstream's TLS session ticket may be resumed: while the upstream's certificate
// path, verified at the full handshake the ticket descends from, is within its dates. Node
// skips the chain's verification on a resumed session (its verdict is the first handshake's,
// and it shows no server certificate then), and a TLS 1.3 upstream hands new tickets on every
// resumed connection: without this, an upstream whose SVID expired (its renewals failing) was
// trusted for as long as the outbound kept dialling it within the tickets' lifetime. And only
// under the identity material (certificate and bundle) it was made with: a rotation clears the
// endpoints' ticket caches, but a handshake in flight across it is handed its tickets after
// the clearing, and each resumption then hands new ones, so a root retired since would be
// trusted on, and the callee would go on seeing our old certificate (which it cuts at expiry).
//
// The path is the one Node hands checkServerIdentity on a full handshake (its verified chain,
// dates as text): reading it costs a few Date.parse calls, where getPeerX509Certificate()
// would decode every certificate's key again (~0.4 ms). A socket's origin is one object its
// tickets share, filled in by the check: a ticket is taken however its event and the check
// are ordered (Node emits TLS 1.2's after the handshake, TLS 1.3's come after it anyway).

import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import { MAX_PRESENTED, onAcceptedPath, validityProblem, type ValidityWindow } from '../identity/peer-validity.js';
import type { IdentityTls } from '../identity/tls-contexts.js';

/**
 * What a ticket, and a session on its socket, descends from: its upstream's verified path
 * window, the certificates Node handed with it (DER, leaf first: what upstream-trust.ts checks
 * against a changed bundle), and the identity material of that handshake.
 */
export interface Origin {
  window: ValidityWindow | undefined;
  presented: readonly Buffer[];
  material: IdentityTls | undefined;
}

// On the socket itself, not in a WeakMap: the node codec's session shows its socket through
// a Proxy (http2's session.socket), which reads a property of the socket but is another key
const kOrigin = Symbol('meshcar.upstreamOrigin');
type OriginSocket = TLSSocket & { [kOrigin]?: Origin };
/** Nothing outlives its ticket (an endpoint's cache holds the ticket). */
const ticketOrigins = new WeakMap<Buffer, Origin>();

function originOf(socket: TLSSocket): Origin {
  let origin = (socket as OriginSocket)[kOrigin];
  if (origin === undefined) (socket as OriginSocket)[kOrigin] = origin = { window: undefined, presented: [], material: undefined };
  return origin;
}

/**
 * The upstream path a session's socket (or the node codec's proxy of it) was accepted on: its
 * full handshake's, or that of the ticket it resumed (noteResumed). Undefined if never told.
 */
export function upstreamOrigin(socket: unknown): Origin | undefined {
  const origin = (socket as OriginSocket | undefined)?.[kOrigin];
  return origin?.window === undefined ? undefined : origin;
}

/** A socket that resumed `offered`: its upstream's path is the one that ticket descends from. */
export function noteResumed(socket: TLSSocket, offered: Buffer | undefined): void {
  const origin = offered && ticketOrigins.get(offered);
  if (origin !== undefined && socket.isSessionReused()) (socket as OriginSocket)[kOrigin] = origin;
}

/**
 * The window in which every certificate of a verified path (leaf to trust anchor) is within its
 * dates. Node links the presented certificates by name and key, so an expired copy of an issuer
 * sent beside its successor can be linked though OpenSSL verified through the successor: such a
 * copy is passed over as the inbound passes it over (peer-validity.ts onAcceptedPath). Counted,
 * the window had ended already, and the session was cut right after its first request went out.
 */
export function verifiedPathWindow(leaf: PeerCertificate, presented?: Buffer[], nowMs = Date.now()): ValidityWindow {
  let notBeforeMs = Date.parse(leaf.valid_from);
  let notAfterMs = Date.parse(leaf.valid_to);
  if ((leaf as DetailedPeerCertificate).raw) presented?.push((leaf as DetailedPeerCertificate).raw);
  const linked: Array<{ fromMs: number; toMs: number; subject: string; key: Buffer | undefined }> = [];
  let cert: DetailedPeerCertificate | undefined = (leaf as DetailedPeerCertificate).issuerCertificate;
  // the trust anchor is its own issuer
  if (cert === leaf) cert = undefined;
  for (let count = 1; cert !== undefined && count < MAX_PRESENTED; count++) {
    linked.push({ fromMs: Date.parse(cert.valid_from), toMs: Date.parse(cert.valid_to), subject: JSON.stringify(cert.subject), key: cert.pubkey });
    if (cert.raw) presented?.push(cert.raw);
    cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
  }
  for (const c of onAcceptedPath(linked, (a, b) => a.subject === b.subject && a.key !== undefined && b.key !== undefined && a.key.equals(b.key), nowMs)) {
    notBeforeMs = Math.max(notBeforeMs, c.fromMs);
    notAfterMs = Math.min(notAfterMs, c.toMs);
  }
  // an unreadable date would compare as neither past nor future: the ticket is then not resumed
  if (Number.isNaN(notBeforeMs) || Number.isNaN(notAfterMs) || linked.some((c) => Number.isNaN(c.fromMs) || Number.isNaN(c.toMs))) return { notBeforeMs, notAfterMs, problem: 'a certificate date could not be read' };
  return { notBeforeMs, notAfterMs };
}

/** Called with the chain OpenSSL verified on a full handshake (checkServerIdentity's) and the material it was dialled with. */
export function notePathVerified(socket: TLSSocket, leaf: PeerCertificate, material: IdentityTls): void {
  const origin = originOf(socket);
  const presented: Buffer[] = [];
  origin.window = verifiedPathWindow(leaf, presented);
  origin.presented = presented;
  origin.material = material;
}

/**
 * Notes the origin of a ticket `socket` was handed: that of the ticket it resumed (`offered`),
 * or the socket's full handshake. A ticket whose origin is never told is not resumed.
 */
export function keepTicketOrigin(ticket: Buffer, socket: TLSSocket, offered: Buffer | undefined): void {
  const origin = socket.isSessionReused() ? offered && ticketOrigins.get(offered) : originOf(socket);
  if (origin !== undefined) ticketOrigins.set(ticket, origin);
}

/**
 * Whether `ticket` may be offered at `nowMs` with `material` (the identity's current one): the
 * material it was made with (one object per identity version), and its upstream's path within its dates.
 */
export function ticketUsable(ticket: Buffer, material: IdentityTls, nowMs = Date.now()): boolean {
  const origin = ticketOrigins.get(ticket);
  return origin?.window !== undefined && origin.material === material && validityProblem(origin.window, nowMs) === undefined;
}

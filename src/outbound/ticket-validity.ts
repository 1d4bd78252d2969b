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

import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { pathWindow, presentedChain, validityProblem, type ValidityWindow } from '../identity/peer-validity.js';
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
 * The window of an upstream's path at its full handshake: pathWindow, as the inbound judges a
 * caller's, over every certificate it presented in the order sent (X509Certificate's links;
 * `presented` gets them all, DER). Node's PeerCertificate links each issuer by name and key to
 * the first presented copy that matches: an expired copy sent before the current one was then
 * counted (the window had ended before the first request, and each session was cut right after
 * it went out), or, passed over, hid the current issuer and its end.
 */
export function verifiedPathWindow(leaf: X509Certificate, presented?: Buffer[], nowMs = Date.now(), anchorsPem?: string): ValidityWindow {
  // walked once: the DER for the origin's chain checks, and the window
  const chain = presentedChain(leaf);
  if (presented !== undefined) for (const cert of chain.certs) presented.push(cert.raw);
  return pathWindow(leaf, nowMs, anchorsPem, chain);
}

/**
 * Called with the chain OpenSSL verified on a full handshake (checkServerIdentity's) and the
 * material it was dialled with; returns why the path is refused, as the inbound refuses it (more
 * than MAX_PRESENTED certificates, a date that cannot be read), else undefined. Only the tickets
 * looked at that once, and the session guard reads the window's end alone: an upstream sending
 * its issuer 11th kept its session past the issuer's end.
 */
export function notePathVerified(socket: TLSSocket, material: IdentityTls): string | undefined {
  const origin = originOf(socket);
  const presented: Buffer[] = [];
  const leaf = socket.getPeerX509Certificate();
  origin.window = leaf === undefined ? { notBeforeMs: 0, notAfterMs: 0, problem: 'presented no certificate' } : verifiedPathWindow(leaf, presented, Date.now(), material.anchorsPem);
  origin.presented = presented;
  origin.material = material;
  return origin.window.problem;
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

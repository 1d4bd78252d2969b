// How long an upstream's TLS session ticket may be resumed: while the upstream's certificate
// path, verified at the full handshake the ticket descends from, is within its dates. Node
// skips the chain's verification on a resumed session (its verdict is the first handshake's,
// and it shows no server certificate then), and a TLS 1.3 upstream hands new tickets on every
// resumed connection: without this, an upstream whose SVID expired (its renewals failing) was
// trusted for as long as the outbound kept dialling it within the tickets' lifetime. And only
// under the trust bundle that verified that handshake: a rotation clears the endpoints' ticket
// caches, but a handshake in flight across it is handed its tickets after the clearing, and
// each resumption then hands new ones, so a root retired since would be trusted on.

import type { TLSSocket } from 'node:tls';
import { pathWindow, validityProblem, type ValidityWindow } from '../identity/peer-validity.js';
import { peerCertificateOf } from './mutual-tls.js';

/** What a ticket descends from: its upstream's path window, and the bundle that verified it. */
interface TicketOrigin {
  readonly window: ValidityWindow;
  readonly anchorsPem: string;
}

/** Each ticket's origin; nothing outlives the ticket (the endpoint's cache holds it). */
const origins = new WeakMap<Buffer, TicketOrigin>();
/**
 * The window of a full handshake's presented path, per socket: a TLS 1.3 upstream hands two
 * tickets, and Node's getPeerX509Certificate() answers only its first call on a client socket.
 */
const socketWindows = new WeakMap<TLSSocket, ValidityWindow>();

/** The window of the server's path on a full handshake, worked out once per socket. */
function fullHandshakeWindow(socket: TLSSocket): ValidityWindow | undefined {
  let window = socketWindows.get(socket);
  if (window === undefined) {
    const cert = peerCertificateOf(socket);
    if (cert === undefined) return undefined;
    window = pathWindow(cert, Date.now());
    socketWindows.set(socket, window);
  }
  return window;
}

/**
 * Notes the origin of a ticket `socket` was handed: that of the ticket it resumed (`offered`),
 * or the server's presented path on a full handshake verified under `anchorsPem` (the bundle
 * of the context it was dialled with). A ticket whose origin cannot be told gets none, and is
 * not resumed.
 */
export function keepTicketOrigin(ticket: Buffer, socket: TLSSocket, offered: Buffer | undefined, anchorsPem: string): void {
  if (socket.isSessionReused()) {
    const origin = offered && origins.get(offered);
    if (origin !== undefined) origins.set(ticket, origin);
    return;
  }
  const window = fullHandshakeWindow(socket);
  if (window !== undefined) origins.set(ticket, { window, anchorsPem });
}

/** Whether `ticket` may be offered at `nowMs` under the bundle `anchorsPem`: the one that verified its upstream's path, which is within its dates. */
export function ticketUsable(ticket: Buffer, anchorsPem: string, nowMs = Date.now()): boolean {
  const origin = origins.get(ticket);
  return origin !== undefined && origin.anchorsPem === anchorsPem && validityProblem(origin.window, nowMs) === undefined;
}

// How long an upstream's TLS session ticket may be resumed: while the upstream's certificate
// path, verified at the full handshake the ticket descends from, is within its dates. Node
// skips the chain's verification on a resumed session (its verdict is the first handshake's,
// and it shows no server certificate then), and a TLS 1.3 upstream hands new tickets on every
// resumed connection: without this, an upstream whose SVID expired (its renewals failing) was
// trusted for as long as the outbound kept dialling it within the tickets' lifetime.

import type { TLSSocket } from 'node:tls';
import { pathWindow, validityProblem, type ValidityWindow } from '../identity/peer-validity.js';
import { peerCertificateOf } from './mutual-tls.js';

/** Each ticket's window; nothing outlives the ticket (the endpoint's cache holds it). */
const windows = new WeakMap<Buffer, ValidityWindow>();
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
 * Notes the window of a ticket `socket` was handed: that of the ticket it resumed (`offered`),
 * or the server's presented path on a full handshake. A ticket whose window cannot be told
 * gets none, and is not resumed.
 */
export function keepTicketWindow(ticket: Buffer, socket: TLSSocket, offered: Buffer | undefined): void {
  const window = socket.isSessionReused() ? offered && windows.get(offered) : fullHandshakeWindow(socket);
  if (window !== undefined) windows.set(ticket, window);
}

/** Whether `ticket` may be offered at `nowMs`: its upstream's path is within its dates. */
export function ticketUsable(ticket: Buffer, nowMs = Date.now()): boolean {
  const window = windows.get(ticket);
  return window !== undefined && validityProblem(window, nowMs) === undefined;
}

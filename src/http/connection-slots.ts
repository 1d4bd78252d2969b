// A server's cap on open connections (the CA's and the admin port's) that idle connections
// cannot hold against everyone. Node's server.maxConnections closes every connection that
// arrives at the cap: anyone who reaches the port from a few addresses (each within its
// per-address cap: 16 × 64 on the CA, 8 × 32 on the admin port) could fill it with connections
// that never send a request, renewed before their timeouts, and every sidecar's signing
// request, or the kubelet's probe (a failed liveness probe restarts the container), was then
// refused. Here, at the cap, the oldest connection with no request in flight (a handshake in
// progress, a silent or kept-alive one) is closed and the new one taken: a real client sends its
// request within milliseconds of connecting, so it gets through unless the cap's worth of
// connections arrives within those milliseconds. The idle one closed is of the address holding
// the most among those with one idle (the newcomer's own first on a tie, then the oldest), and
// another address's younger than a second only for a newcomer whose address holds fewer by
// more than one: with every other slot busy, a newcomer that just took one is idle until its
// head arrives, and one bare connect from anyone (oldest first) closed it. When every open
// connection has a request in flight, the address holding the most gives up its oldest, if it holds more than one more than
// the newcomer's: a request in flight costs a client nothing where the server holds it (the
// admin port holds each scrape up to 1 s for the next shared render), so eight addresses, each
// within its cap and asking /metrics in a loop, kept every slot busy and the kubelet's probes
// were closed, 29 of 30 (a failed liveness probe restarts the container). Only when no address
// holds more than the newcomer's share is the new one closed, as before. A request is in flight
// from its head to the end of its answer (or the connection's end); the requests' own timeouts
// bound how long.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** A connection this young with no request yet is still sending its first head (or TLS handshake). */
const YOUNG_MS = 1_000;

export interface SlotEvents {
  /** The oldest idle connection, from `address`, was closed for a new one. */
  evicted(address: string): void;
  /** Every connection had a request in flight: the oldest of `address`, which held `held` of them (the most), was closed for a new one from another. */
  evictedBusy(address: string, held: number): void;
  /** Every connection had a request in flight: the new one, from `address`, was closed. */
  refused(address: string): void;
}

/**
 * Caps `server` at `max` open connections as above. Call it after the per-address caps'
 * 'connection' listeners, so a connection they close takes no slot and frees none.
 */
export function capConnectionsEvictingIdle(server: HttpServer | HttpsServer, max: number, events: SlotEvents): void {
  // the accepted sockets, oldest first (a Map keeps insertion order), with their requests in flight
  const open = new Map<Socket, Slot>();
  /** Open connections by address. */
  const held = new Map<string, number>();
  const release = (socket: Socket) => {
    const slot = open.get(socket);
    if (slot === undefined) return;
    open.delete(socket);
    const left = (held.get(slot.address) ?? 1) - 1;
    if (left === 0) held.delete(slot.address);
    else held.set(slot.address, left);
  };
  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    const address = socket.remoteAddress ?? 'unknown';
    if (open.size >= max) {
      const idle = idleOfLargestShare(open, held, address);
      const victim = idle ?? oldestOfLargestShare(open, held, address);
      if (victim === undefined) {
        socket.destroy();
        events.refused(address);
        return;
      }
      const victimAddress = (open.get(victim) as Slot).address;
      const victimHeld = held.get(victimAddress) ?? 0;
      release(victim);
      victim.destroy();
      if (idle !== undefined) events.evicted(victimAddress);
      else events.evictedBusy(victimAddress, victimHeld);
    }
    open.set(socket, { inFlight: 0, address, sinceMs: performance.now() });
    held.set(address, (held.get(address) ?? 0) + 1);
    socket.once('close', () => release(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // on HTTPS the request's socket is the TLS one, wrapping the accepted socket counted above
    const socket = req.socket as Socket & { _parent?: Socket | null };
    const entry = open.get(socket) ?? (socket._parent ? open.get(socket._parent) : undefined);
    if (entry === undefined) return;
    entry.inFlight += 1;
    res.once('close', () => {
      entry.inFlight -= 1;
    });
  });
}

interface Slot {
  inFlight: number;
  readonly address: string;
  readonly sinceMs: number;
}

/**
 * The oldest idle connection of the address holding the most among those with one idle; on a
 * tie, `newcomer`'s own. Another address's younger than YOUNG_MS only when that address holds
 * more than one more than the newcomer's.
 */
function idleOfLargestShare(open: Map<Socket, Slot>, held: Map<string, number>, newcomer: string): Socket | undefined {
  let victim: Socket | undefined;
  let victimHeld = 0;
  let victimOwn = false;
  const newcomerHeld = held.get(newcomer) ?? 0;
  const youngSince = performance.now() - YOUNG_MS;
  // oldest first: a later one replaces the choice only when strictly better
  for (const [socket, entry] of open) {
    if (entry.inFlight !== 0) continue;
    const count = held.get(entry.address) ?? 0;
    const own = entry.address === newcomer;
    // another address's young one (still sending its head): only for a newcomer holding fewer by more than one
    if (!own && entry.sinceMs > youngSince && count <= newcomerHeld + 1) continue;
    if (victim === undefined || count > victimHeld || (count === victimHeld && own && !victimOwn)) {
      victim = socket;
      victimHeld = count;
      victimOwn = own;
    }
  }
  return victim;
}

/** The oldest connection of the address holding the most, if it holds more than one more than `newcomer` (at the cap only: a walk of the open ones). */
function oldestOfLargestShare(open: Map<Socket, Slot>, held: Map<string, number>, newcomer: string): Socket | undefined {
  let largest: string | undefined;
  let most = 0;
  for (const [address, count] of held) {
    if (count > most) {
      most = count;
      largest = address;
    }
  }
  if (largest === undefined || most <= (held.get(newcomer) ?? 0) + 1) return undefined;
  for (const [socket, entry] of open) if (entry.address === largest) return socket;
  return undefined;
}

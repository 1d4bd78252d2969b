// A server's cap on open connections (the CA's and the admin port's) that idle connections
// cannot hold against everyone. Node's server.maxConnections closes every connection that
// arrives at the cap: anyone who reaches the port from a few addresses (each within its
// per-address cap: 16 × 64 on the CA, 8 × 32 on the admin port) could fill it with connections
// that never send a request, renewed before their timeouts, and every sidecar's signing
// request, or the kubelet's probe (a failed liveness probe restarts the container), was then
// refused. Here, at the cap, a connection with no request in flight (a handshake in progress,
// a silent or kept-alive one) is closed and the new one taken: a real client sends its
// request within milliseconds of connecting, so it gets through unless the cap's worth of
// connections arrives within those milliseconds; and when every one is busy, one of an address
// holding more than its share. Which one goes, and why, is slot-victim.ts. Only when none may
// go is the new one closed. A request is in flight from its head to the end of its answer (or
// the connection's end), and a connection lingering after an early answer counts as busy; the
// requests' own timeouts and the linger's bounds say how long.
// Before the cap, each address holds at most `maxPerAddress`: one address (a pod, or every
// process of a host on loopback) cannot take the slots from the others. At that bound the
// address's own oldest connection with no request in flight makes room for its new one
// (slot-victim.ts ownVictim); only when each of its connections has a request in flight is the
// new one closed. Counted as TCP connections are accepted, before any TLS handshake.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { ownVictim, slotVictim, type Slot } from './slot-victim.js';

export interface SlotEvents {
  /** A connection with no request in flight, from `address`, was closed for a new one (slot-victim.ts). */
  evicted(address: string): void;
  /** A connection with a request in flight, the oldest of `address`, which held `held` (the most, above its share), was closed for a new one from another address. */
  evictedBusy(address: string, held: number): void;
  /** None could make room: the new one, from `address`, was closed. */
  refused(address: string): void;
  /** `address` held maxPerAddress: its own oldest connection with no request in flight was closed for its new one. */
  evictedOwn(address: string): void;
  /** `address` held maxPerAddress, each with a request in flight: its new one was closed. */
  refusedOwn(address: string): void;
}

export interface SlotLimits {
  /** Open connections in all. */
  readonly max: number;
  /** Open connections one remote address may hold. */
  readonly maxPerAddress: number;
}

/** Caps `server` at `limits.max` open connections, `limits.maxPerAddress` of them from one address, as above. */
export function capConnectionsEvictingIdle(server: HttpServer | HttpsServer, limits: SlotLimits, events: SlotEvents): void {
  const { max, maxPerAddress } = limits;
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
    if ((held.get(address) ?? 0) >= maxPerAddress) {
      const own = ownVictim(open, address);
      if (own === undefined) {
        socket.destroy();
        events.refusedOwn(address);
        return;
      }
      release(own);
      own.destroy();
      events.evictedOwn(address);
    } else if (open.size >= max) {
      const victim = slotVictim(open, held, address, performance.now());
      if (victim === undefined) {
        socket.destroy();
        events.refused(address);
        return;
      }
      const victimAddress = (open.get(victim.socket) as Slot).address;
      const victimHeld = held.get(victimAddress) ?? 0;
      release(victim.socket);
      victim.socket.destroy();
      if (victim.busy) events.evictedBusy(victimAddress, victimHeld);
      else events.evicted(victimAddress);
    }
    // the socket the HTTP parser serves, from the start: a connection lingers after a parser
    // refusal (a 431, a 400) with no 'request' ever seen; on TLS, the TLS socket (below)
    open.set(socket, { inFlight: 0, address, idleSinceMs: performance.now(), served: socket });
    held.set(address, (held.get(address) ?? 0) + 1);
    socket.once('close', () => release(socket));
  });
  server.on('secureConnection', (tlsSocket: Socket & { _parent?: Socket | null }) => {
    const entry = tlsSocket._parent ? open.get(tlsSocket._parent) : undefined;
    if (entry !== undefined) entry.served = tlsSocket;
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // on HTTPS the request's socket is the TLS one, wrapping the accepted socket counted above
    const socket = req.socket as Socket & { _parent?: Socket | null };
    const entry = open.get(socket) ?? (socket._parent ? open.get(socket._parent) : undefined);
    if (entry === undefined) return;
    entry.inFlight += 1;
    res.once('close', () => {
      entry.inFlight -= 1;
      if (entry.inFlight === 0) entry.idleSinceMs = performance.now();
    });
  });
}

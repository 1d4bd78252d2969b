// A server's cap on open connections (the CA's and the admin port's) that idle connections
// cannot hold against everyone. Node's server.maxConnections closes every connection that
// arrives at the cap: anyone who reaches the port from a few addresses (each within its
// per-address cap: 16 × 64 on the CA, 8 × 32 on the admin port) could fill it with connections
// that never send a request, renewed before their timeouts, and every sidecar's signing
// request, or the kubelet's probe (a failed liveness probe restarts the container), was then
// refused. Here, at the cap, the oldest connection with no request in flight (a handshake in
// progress, a silent or kept-alive one) is closed and the new one taken: a real client sends its
// request within milliseconds of connecting, so it gets through unless the cap's worth of
// connections arrives within those milliseconds. Only when every open connection has a request
// in flight is the new one closed, as before. A request is in flight from its head to the
// end of its answer (or the connection's end); the requests' own timeouts bound how long.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface SlotEvents {
  /** The oldest idle connection, from `address`, was closed for a new one. */
  evicted(address: string): void;
  /** Every connection had a request in flight: the new one, from `address`, was closed. */
  refused(address: string): void;
}

/**
 * Caps `server` at `max` open connections as above. Call it after the per-address caps'
 * 'connection' listeners, so a connection they close takes no slot and frees none.
 */
export function capConnectionsEvictingIdle(server: HttpServer | HttpsServer, max: number, events: SlotEvents): void {
  // the accepted sockets, oldest first (a Map keeps insertion order), with their requests in flight
  const open = new Map<Socket, { inFlight: number }>();
  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    if (open.size >= max) {
      const victim = oldestIdle(open);
      if (victim === undefined) {
        socket.destroy();
        events.refused(socket.remoteAddress ?? 'unknown');
        return;
      }
      open.delete(victim);
      victim.destroy();
      events.evicted(victim.remoteAddress ?? 'unknown');
    }
    open.set(socket, { inFlight: 0 });
    socket.once('close', () => open.delete(socket));
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

function oldestIdle(open: Map<Socket, { inFlight: number }>): Socket | undefined {
  for (const [socket, entry] of open) if (entry.inFlight === 0) return socket;
  return undefined;
}

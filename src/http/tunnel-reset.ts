// Aborting one side of an upgraded (WebSocket) tunnel with a TCP reset. A tunnel carries
// half-closes through (an app's FIN is a clean end of its stream), so a hop whose other side
// was reset, or that a tunnel idle timeout or a drain running out cuts, must not close with a
// FIN: the far app would read an abort as a clean end of the stream (a transfer cut in its
// middle taken for whole), or sit on a half-open connection. Works on a plain TCP socket and on a TLS socket the
// server side accepted (its TCP connection is the socket Node wrapped, `_parent`). Only once
// the handshake is over: Node 20 crashed (SIGSEGV) resetting `_parent` inside the
// secureConnection callback, which no tunnel reaches (a tunnel follows an HTTP exchange).

import net from 'node:net';

/** Resets `socket`'s TCP connection (RST), then destroys it; a socket with no TCP under it is just destroyed. */
export function resetTunnelSide(socket: net.Socket): void {
  if (socket.destroyed) return;
  const tcp = tcpOf(socket);
  // after the handshake only: a tunnel exists once an HTTP exchange went over the connection
  if (tcp !== undefined && !tcp.destroyed) tcp.resetAndDestroy();
  socket.destroy();
}

function tcpOf(socket: net.Socket): net.Socket | undefined {
  const parent = (socket as net.Socket & { _parent?: unknown })._parent;
  if (parent instanceof net.Socket) return parent;
  // a plain TCP socket (an app's connection): its own handle is the TCP one
  return socket.constructor === net.Socket ? socket : undefined;
}

const kCutTunnel = Symbol('meshcar.cutTunnel');
type TunnelSocket = net.Socket & { [kCutTunnel]?: () => void };

/** Notes how to cut the tunnel this (app or caller) socket carries, both its sides with a reset. */
export function markTunnel(socket: net.Socket, cut: () => void): void {
  (socket as TunnelSocket)[kCutTunnel] = cut;
}

/**
 * Closes a listener's connection at the end of a drain (or at close): a tunnel is cut with
 * resets on both its sides, as at its idle timeout; a FIN would reach each app as the other's
 * clean end, and the calling sidecar would keep its app's connection half-open.
 */
export function destroyConnection(socket: net.Socket): void {
  const cut = (socket as TunnelSocket)[kCutTunnel];
  if (cut !== undefined) cut();
  else socket.destroy();
}

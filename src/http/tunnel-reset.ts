// Aborting one side of an upgraded (WebSocket) tunnel with a TCP reset. A tunnel carries
// half-closes through (an app's FIN is a clean end of its stream), so a hop whose other side
// was reset, or that a tunnel idle timeout cuts, must not close with a FIN: the far app would
// read an abort as a clean end of the stream (a transfer cut in its middle taken for whole),
// or sit on a half-open connection. Works on a plain TCP socket and on a TLS socket the
// server side accepted (its TCP connection is the socket Node wrapped, `_parent`).

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

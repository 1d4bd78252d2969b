// Aborting one side of an upgraded (WebSocket) tunnel with a TCP reset. A tunnel carries
// half-closes through (an app's FIN is a clean end of its stream), so a hop whose other side
// was reset, or that a tunnel idle timeout or a drain running out cuts, must not close with a
// FIN: the far app would read an abort as a clean end of the stream (a transfer cut in its
// middle taken for whole), or sit on a half-open connection. Works on a plain TCP socket and on a TLS socket the
// server side accepted (its TCP connection is the socket Node wrapped, `_parent`). Only once
// the handshake is over: Node 20 crashed (SIGSEGV) resetting `_parent` inside the
// secureConnection callback, which no tunnel reaches (a tunnel follows an HTTP exchange).
// Also tells a reset from a FIN when libuv reported a plain end (relayEnd), and keeps asking
// after a half-close, when Node reads no more (watchHalfClosed).

import net from 'node:net';

/**
 * A tunnel side whose other side is gone: what is still queued toward it gets this long to
 * leave (a peer that reads nothing must not hold the connection), then it is reset.
 */
export const TUNNEL_FLUSH_MS = 5_000;

/**
 * The other side of a tunnel has closed: `socket` closes once what is queued on it has left
 * (the other side's FIN, relayed behind it, with it), and is reset (never a FIN: the reader
 * would take a cut stream for whole) if that takes longer than TUNNEL_FLUSH_MS. Destroyed at
 * once, the queue was thrown away and the reader got a clean end short of the data.
 */
export function closeWhenFlushed(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  // 'drain' does not come once the writable side is ending (the other side's FIN relayed): 'finish' does
  socket.once(socket.writableEnded ? 'finish' : 'drain', destroySelf);
  const timer = setTimeout(resetTunnelSide, TUNNEL_FLUSH_MS, socket);
  socket.once('close', () => clearTimeout(timer));
}

function destroySelf(this: net.Socket): void {
  this.destroy();
}

/** Resets `socket`'s TCP connection (RST), then destroys it; a socket with no TCP under it is just destroyed. */
export function resetTunnelSide(socket: net.Socket): void {
  if (socket.destroyed) return;
  const tcp = tcpUnder(socket);
  // after the handshake only: a tunnel exists once an HTTP exchange went over the connection
  if (tcp !== undefined && !tcp.destroyed && !shutdownPending(socket) && !shutdownPending(tcp)) tcp.resetAndDestroy();
  socket.destroy();
}

/**
 * Whether the FIN `end()` asked for may be on its way (all written, not yet finished): libuv
 * refuses a reset then (uv_tcp_close_reset: EINVAL while a uv_shutdown is pending), and Node 20
 * still drops the handle as closing without closing it, so the socket never closes (no 'close',
 * its fd held) and the process's exit cleanup spins on it at 100% CPU. Such a side is destroyed
 * instead: the peer reads the FIN already announced. With bytes still queued no shutdown was
 * issued yet (it follows the last write), and the reset goes as before.
 */
export function shutdownPending(socket: net.Socket): boolean {
  return socket.writableEnded && !socket.writableFinished && socket.writableLength === 0;
}

/**
 * `from`'s peer ended its side: relays the end to `to` as what it was. libuv reports a reset
 * that arrives right behind data (an app that writes and resets in one turn: a 101, a last
 * message) as a plain end of stream, never as ECONNRESET (with POLLHUP after a partial read it
 * stops at EOF without reading the error), so a reset would go on as a FIN: a clean end of
 * the peer's stream to the other app, whose connection a half-close-carrying tunnel then
 * keeps open. A zero-length write on `from`'s TCP connection asks the kernel: it fails on a
 * reset connection (ECONNRESET/EPIPE) and succeeds, sending nothing, on a half-closed one.
 * Only asked while `from` can still write with nothing queued (else the answer would wait
 * for the queue, behind a peer that may not read); otherwise the end goes on as a FIN, as
 * before, and a reset still shows when the queue fails. `tcp`: `from` itself for a plain
 * socket, the TCP connection under it for TLS (tcpUnder, or the one dialled).
 */
export function relayEnd(from: net.Socket, tcp: net.Socket | undefined, to: net.Socket, onReset: () => void): void {
  const fin = () => {
    if (!to.destroyed && !to.writableEnded) to.end();
    if (tcp !== undefined) watchHalfClosed(from, tcp, onReset);
  };
  if (tcp === undefined || tcp.destroyed || from.writableEnded || from.writableLength > 0 || tcp.writableEnded || tcp.writableLength > 0) {
    fin();
    return;
  }
  tcp.write(EMPTY, (err) => {
    if (err) onReset();
    else fin();
  });
}

const EMPTY = Buffer.alloc(0);

/** How often a half-closed tunnel side is asked whether it has been reset since (watchHalfClosed). */
const HALF_CLOSED_CHECK_MS = 1_000;

/** Idle time before TCP keepalive probes on a half-closed tunnel side (watchHalfClosed). */
const HALF_CLOSED_KEEPALIVE_MS = 10_000;

/**
 * `from`'s peer has half-closed (its FIN relayed), and `from` stays open for the other way. Node
 * reads no more from a socket after its end, so a reset that comes later (the far sidecar's
 * tunnelIdleTimeout or drain cutting the tunnel, an app that resets after its FIN) went unseen:
 * the other app's connection stayed half-open, and in flight, until this sidecar's own idle
 * timeout. So `from` is asked, as relayEnd asks it, every HALF_CLOSED_CHECK_MS while nothing is
 * queued on it (a write in progress sees a reset by itself) until it closes. The connection
 * between the two sidecars is watched so on both sides, and each app's socket: an app that
 * half-closes and then resets (crashes) had both sidecars hold the tunnel, the other app never
 * told, until tunnelIdleTimeout (1 h by default). A socket that carries an idle timer of its own
 * is left as before; a tunnel's app sockets carry none (the outbound counts tunnelIdleTimeout
 * itself, the inbound stops the node:http agent's timer at the 101).
 */
function watchHalfClosed(from: net.Socket, tcp: net.Socket, onReset: () => void): void {
  // not a socket with an idle timer of its own: Node re-arms it on any write, one of no bytes
  // too, so the look every second would keep it from ever running out. The outbound's tunnel
  // idle timeout is kept apart from its app socket for this reason (tunnel-idle.ts)
  if ((tcp.timeout ?? 0) > 0) return;
  // a FIN does not say whether the peer closed its whole connection or only its side: one that
  // closed it all (an app's WebSocket client closing) never resets, so the look below never
  // saw it go and the tunnel held its slot (the outbound's circuit maxRequests, the inbound's
  // per-caller connections) until tunnelIdleTimeout, an hour. Keepalive probes reach the
  // peer's kernel, which resets them once it has let the closed connection go (60 s on Linux,
  // tcp_fin_timeout); the next look then sees the reset. A peer that only half-closed answers them.
  // An app's socket only (a plain one, its own TCP): Node's keepalive gives up after 10 probes a
  // second apart, and a half-closed tunnel between sidecars on two hosts would be cut by 20 s
  // of lost packets; the sidecar at the other end watches its own app so and resets the tunnel.
  if (tcp === from) tcp.setKeepAlive(true, HALF_CLOSED_KEEPALIVE_MS);
  const timer = setInterval(() => {
    if (from.destroyed || tcp.destroyed) {
      clearInterval(timer);
      return;
    }
    if (from.writableEnded || from.writableLength > 0 || tcp.writableEnded || tcp.writableLength > 0) return;
    tcp.write(EMPTY, (err) => {
      if (!err) return;
      clearInterval(timer);
      onReset();
    });
  }, HALF_CLOSED_CHECK_MS);
  timer.unref();
  from.once('close', () => clearInterval(timer));
}

/** The TCP connection a (TLS, or plain) socket is carried on; undefined when there is none. */
export function tcpUnder(socket: net.Socket): net.Socket | undefined {
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

// One listener, two protocols: hands each accepted connection to an HTTP/1.1 server or an
// HTTP/2 server. On TLS the ALPN result decides; on plain TCP the client's first bytes do
// (an h2c client with prior knowledge opens with the fixed connection preface), within a bound.
// Using two ordinary Node servers, rather than http2's allowHTTP1, keeps HTTP/1.1 features
// such as Upgrade and Expect: 100-continue working as Node's http module implements them.

import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface ProtocolServers {
  readonly http1: HttpServer;
  readonly http2: Http2Server;
}

/** For a TLS socket after its handshake. */
export function dispatchTlsSocket(socket: TLSSocket, servers: ProtocolServers): void {
  if (socket.alpnProtocol === 'h2') servers.http2.emit('connection', socket);
  else servers.http1.emit('connection', socket);
}

/**
 * Gives a plain socket to Node's HTTP/1.1 server with `bytes` (already read from it) first: the
 * plain listener's hand-over, and the outbound's again for a request served without its h2c
 * offer (h2c-offer-ignored.ts). Node's HTTP/1.1 server never resumes an adopted paused socket,
 * so the first request would hang. Resuming inside 'connection' leaves its pause bookkeeping out
 * of step (a paused request body would stop pausing the socket: no upload backpressure,
 * measured); one tick later it is in step, as when the server accepts the socket itself.
 */
export function handToHttp1(server: HttpServer, socket: Socket, bytes: Buffer): void {
  socket.pause();
  socket.unshift(bytes);
  server.emit('connection', socket);
  process.nextTick(resumeUnlessDestroyed, socket);
}

function resumeUnlessDestroyed(socket: Socket): void {
  if (!socket.destroyed) socket.resume();
}

function destroyUndecided(socket: Socket): void {
  socket.destroy();
}

/**
 * For a plain TCP socket: waits for enough bytes to tell the h2c preface from HTTP/1.x. One
 * that has not told within `firstBytesTimeoutMs` (sent nothing, or part of the preface) is
 * closed: neither server has it yet, so none of their timeouts would ever let it go.
 */
export function dispatchPlainSocket(socket: Socket, servers: ProtocolServers, firstBytesTimeoutMs: number): void {
  let buffered: Buffer = Buffer.alloc(0);
  // unref'd: a connection that has said nothing does not keep the process up
  const timer = setTimeout(destroyUndecided, firstBytesTimeoutMs, socket).unref();
  socket.once('close', () => clearTimeout(timer));
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const compared = Math.min(buffered.length, H2_PREFACE.length);
    const isH2 = buffered.subarray(0, compared).equals(H2_PREFACE.subarray(0, compared));
    if (isH2 && buffered.length < H2_PREFACE.length) return; // could still be the preface
    clearTimeout(timer); // from here on the server's own timeouts apply
    socket.off('data', onData);
    if (isH2) {
      socket.pause();
      socket.unshift(buffered);
      servers.http2.emit('connection', socket); // the HTTP/2 session resumes it itself
      return;
    }
    handToHttp1(servers.http1, socket, buffered);
  };
  socket.on('data', onData);
  socket.once('error', () => socket.destroy());
}

// One listener, two protocols: hands each accepted connection to an HTTP/1.1 server or an
// HTTP/2 server. On TLS the ALPN result decides; on plain TCP the client's first bytes do
// (an h2c client with prior knowledge opens with the fixed connection preface).
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

/** For a plain TCP socket: waits for enough bytes to tell the h2c preface from HTTP/1.x. */
export function dispatchPlainSocket(socket: Socket, servers: ProtocolServers): void {
  let buffered: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const compared = Math.min(buffered.length, H2_PREFACE.length);
    const isH2 = buffered.subarray(0, compared).equals(H2_PREFACE.subarray(0, compared));
    if (isH2 && buffered.length < H2_PREFACE.length) return; // could still be the preface
    socket.off('data', onData);
    socket.pause();
    socket.unshift(buffered);
    (isH2 ? servers.http2 : servers.http1).emit('connection', socket);
    // the adopting server resumes the socket when it starts reading
  };
  socket.on('data', onData);
  socket.once('error', () => socket.destroy());
}

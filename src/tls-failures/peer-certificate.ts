// The peer's certificate of a handshake that failed. Node destroys a socket whose peer failed
// verification before any public event carries it, so the certificate is taken at the socket's
// 'secure' event, which comes first: on the inbound server the socket is reached through the
// 'keylog' event (the first event that hands over the TLSSocket; its secrets are never read),
// on the outbound client where the socket is made. Kept in a WeakMap: nothing outlives the socket.

import { X509Certificate } from 'node:crypto';
import type { Server, TLSSocket } from 'node:tls';

const certificates = new WeakMap<TLSSocket, X509Certificate>();
/** The remote address and port while the socket is open (a socket destroyed by Node forgets them). */
const remotes = new WeakMap<TLSSocket, { address: string | undefined; port: number | undefined }>();

/** Remembers the peer certificate of `socket` once its handshake is done, verified or not. */
export function watchPeerCertificate(socket: TLSSocket): void {
  if (remotes.has(socket)) return;
  remotes.set(socket, { address: socket.remoteAddress, port: socket.remotePort });
  socket.prependOnceListener('secure', () => {
    // from the raw bytes: getPeerX509Certificate() this early would hand its later callers an
    // object without the verified issuer chain (peer-validity walks it)
    const raw = socket.getPeerCertificate()?.raw;
    if (raw) certificates.set(socket, new X509Certificate(raw));
  });
}

/** Every connection of the inbound server: the certificate of a refused caller can be described. */
export function watchServerPeerCertificates(server: Server): void {
  server.on('keylog', (_line: Buffer, socket: TLSSocket) => watchPeerCertificate(socket));
}

export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  return certificates.get(socket);
}

/** The remote address and port, as seen while the socket was open. */
export function remoteOf(socket: TLSSocket): { address: string | undefined; port: number | undefined } {
  const seen = remotes.get(socket);
  return { address: socket.remoteAddress ?? seen?.address, port: socket.remotePort ?? seen?.port };
}

const kPeerCertificate = Symbol('meshcar.peerCertificate');

/** Carries the peer certificate (if seen) on a dial error, to where the failure is counted. */
export function withPeerCertificate<E>(err: E, socket: TLSSocket): E {
  const cert = certificates.get(socket);
  if (cert && err !== null && typeof err === 'object') (err as Record<symbol, unknown>)[kPeerCertificate] = cert;
  return err;
}

export function peerCertificateOfError(err: unknown): X509Certificate | undefined {
  return err !== null && typeof err === 'object' ? ((err as Record<symbol, unknown>)[kPeerCertificate] as X509Certificate | undefined) : undefined;
}

// the issuer's key id, read without node-forge (a sidecar does not load it to explain a failure)
export { authorityKeyId } from '../pki/x509-read.js';

// The peer's certificate of a handshake that failed. Node destroys a socket whose peer failed
// verification before any public event carries it, so the certificate is taken at the socket's
// 'secure' event, which comes first: on the inbound server the socket is reached through the
// 'keylog' event (the first event that hands over the TLSSocket; its secrets are never read),
// on the outbound client where the socket is made. Kept in a WeakMap: nothing outlives the socket.

import { X509Certificate } from 'node:crypto';
import type { Server, TLSSocket } from 'node:tls';

/** The raw DER, parsed only when a failure is described: parsing costs ~0.2 ms, on every handshake. */
const certificates = new WeakMap<TLSSocket, Buffer | X509Certificate>();
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
    if (raw) certificates.set(socket, raw);
  });
}

/** Every connection of the inbound server: the certificate of a refused caller can be described. */
export function watchServerPeerCertificates(server: Server): void {
  server.on('keylog', (_line: Buffer, socket: TLSSocket) => watchPeerCertificate(socket));
}

export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  return parsed(socket);
}

function parsed(socket: TLSSocket): X509Certificate | undefined {
  const seen = certificates.get(socket);
  if (seen === undefined || seen instanceof X509Certificate) return seen;
  const cert = new X509Certificate(seen);
  certificates.set(socket, cert);
  return cert;
}

/** The remote address and port, as seen while the socket was open. */
export function remoteOf(socket: TLSSocket): { address: string | undefined; port: number | undefined } {
  const seen = remotes.get(socket);
  return { address: socket.remoteAddress ?? seen?.address, port: socket.remotePort ?? seen?.port };
}

const kPeerCertificate = Symbol('meshcar.peerCertificate');

/** Carries the peer certificate (if seen) on a dial error, to where the failure is counted. */
export function withPeerCertificate<E>(err: E, socket: TLSSocket): E {
  if (err !== null && typeof err === 'object' && certificates.has(socket)) (err as Record<symbol, unknown>)[kPeerCertificate] = parsed(socket);
  return err;
}

export function peerCertificateOfError(err: unknown): X509Certificate | undefined {
  return err !== null && typeof err === 'object' ? ((err as Record<symbol, unknown>)[kPeerCertificate] as X509Certificate | undefined) : undefined;
}

// the issuer's key id, read without node-forge (a sidecar does not load it to explain a failure)
export { authorityKeyId } from '../pki/x509-read.js';

// The peer's certificate of a handshake that failed. Node destroys a socket whose peer failed
// verification before any public event carries it, so the certificate is taken at the socket's
// 'secure' event, which comes first: on the inbound server the socket is reached through the
// 'keylog' event (the first event that hands over the TLSSocket; its secrets are never read),
// on the outbound client where the socket is made. Kept in a WeakMap: nothing outlives the socket.

import { X509Certificate } from 'node:crypto';
import type { Server, TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { fromDer } from '../pki/der.js';

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

const AUTHORITY_KEY_ID = '2.5.29.35';

/** The authorityKeyIdentifier (the issuer's key id) as colon hex, or undefined. */
export function authorityKeyId(cert: X509Certificate): string | undefined {
  try {
    const tbs = (fromDer(cert.raw).value as forge.asn1.Asn1[])[0] as forge.asn1.Asn1;
    const explicit = (tbs.value as forge.asn1.Asn1[]).find((n) => n.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
    const extensions = ((explicit?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value ?? []) as forge.asn1.Asn1[];
    for (const extension of extensions) {
      const parts = extension.value as forge.asn1.Asn1[];
      if (forge.asn1.derToOid(parts[0]?.value as string) !== AUTHORITY_KEY_ID) continue;
      const octets = parts[parts.length - 1]?.value as string;
      const aki = forge.asn1.fromDer(octets);
      const keyId = (aki.value as forge.asn1.Asn1[]).find((n) => n.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && n.type === 0);
      if (!keyId) return undefined;
      return Buffer.from(keyId.value as string, 'binary').toString('hex').toUpperCase().match(/../g)?.join(':');
    }
  } catch {
    // a certificate we cannot take apart: describe it without the key id
  }
  return undefined;
}

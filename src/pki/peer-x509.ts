// The peer's certificate on a TLS socket as Node's getPeerX509Certificate() reads it the first
// time: with the issuers the peer presented linked (issuerCertificate). Node hands that chain
// out once per socket: a second call on the same socket gives the leaf alone (seen on Node 20
// with a verified client chain). So every reader of an inbound caller's presented path (its
// validity window, peer-identity.ts; its path to a root after a bundle change,
// inbound/caller-trust.ts) goes through this, which keeps the first read per socket: once the
// window's reader had read it, the bundle check after a change found the caller's leaf without
// its issuer, and cut a caller whose root had just come back.

import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

const firstReads = new WeakMap<TLSSocket, X509Certificate>();

/**
 * The peer's certificate, its presented issuers linked, the same object for every call on
 * `socket`. None yet (asked before the handshake is through, or no certificate) is not kept.
 */
export function peerX509(socket: TLSSocket): X509Certificate | undefined {
  const kept = firstReads.get(socket);
  if (kept !== undefined) return kept;
  const cert = socket.getPeerX509Certificate();
  if (cert !== undefined) firstReads.set(socket, cert);
  return cert;
}

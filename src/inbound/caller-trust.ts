// Callers under a trust bundle that lost a root: OpenSSL verified each caller's path at its
// handshake, against the bundle of that moment, and Node keeps that verdict for the life of the
// connection. When a bundle change drops a root (a rotation's retire step, or an operator's new
// bundle file dropping a root he no longer trusts), the connections of callers whose paths
// reach only that root are cut, as at their certificate's expiry (connection-lifetime.ts):
// before, an HTTP/2 session took new streams up to its maximum age (10 min) and an HTTP/1.1
// keep-alive connection new requests until the caller's certificate expired. A bundle that only
// gains roots un-trusts no one and costs nothing.
//
// A caller is kept when some path from its leaf, through the certificates its handshake showed
// (and the intermediates of this sidecar's own chain and of the other callers being looked at),
// is signed by a root of the new bundle: during a rotation a leaf of the new root comes with a
// cross certificate to the old root as well, and is kept. A resumed TLS session (with
// `inbound.sessionResumption: true`) shows its leaf alone; found no path, it is cut, and the
// caller's next connection is a full handshake (the bundle change retired the tickets).

import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { bundleRoots, chainsToRoots } from '../pki/chain-to-roots.js';
import { MAX_PRESENTED } from '../identity/peer-validity.js';
import { peerX509 } from '../pki/peer-x509.js';

/** Whether `after` leaves out a root `before` held. */
export function rootsRemoved(before: string, after: string): boolean {
  const kept = new Set(bundleRoots(after).map((root) => root.fingerprint256));
  return bundleRoots(before).some((root) => !kept.has(root.fingerprint256));
}

/** The caller's leaf and the other certificates its handshake showed (none on a resumed session). */
function presentedPath(socket: TLSSocket): X509Certificate[] | undefined {
  const leaf = peerX509(socket);
  if (leaf === undefined) return undefined;
  const path = [leaf];
  for (let cert = leaf.issuerCertificate; cert !== undefined && path.length < MAX_PRESENTED; cert = cert.issuerCertificate) {
    if (path.some((seen) => seen.fingerprint256 === cert!.fingerprint256)) break;
    path.push(cert);
  }
  return path;
}

/** Whether the caller on `socket` still chains to `roots`; `extra`: intermediates known besides its own. */
export function callerChains(socket: TLSSocket, roots: readonly X509Certificate[], extra: readonly X509Certificate[] = []): boolean {
  const path = presentedPath(socket);
  if (path === undefined) return false;
  const [leaf, ...others] = path as [X509Certificate, ...X509Certificate[]];
  return chainsToRoots(leaf, [...others, ...extra], roots);
}

/**
 * The connections in `sockets` whose callers no longer chain to `roots`, cut with `cut`;
 * returns the SPIFFE IDs (or addresses) of the callers cut, one per connection.
 */
export function cutUntrustedCallers(sockets: Iterable<Socket>, roots: readonly X509Certificate[], ownChainPem: string, cut: (socket: TLSSocket) => string): string[] {
  const open = [...sockets].filter((socket) => !socket.destroyed) as TLSSocket[];
  // intermediates a resumed session's leaf may hang from: ours, and those other callers presented
  // (each once: thousands of callers of one issuer present the same few)
  const extra = new Map(bundleRoots(ownChainPem).slice(1).map((cert) => [cert.fingerprint256, cert] as const));
  const paths = new Map<TLSSocket, X509Certificate[] | undefined>();
  for (const socket of open) {
    const path = presentedPath(socket);
    paths.set(socket, path);
    if (path && !socket.isSessionReused()) for (const cert of path.slice(1)) extra.set(cert.fingerprint256, cert);
  }
  const known = [...extra.values()];
  const cutOnes: string[] = [];
  for (const [socket, path] of paths) {
    if (path === undefined) continue;
    const [leaf, ...others] = path as [X509Certificate, ...X509Certificate[]];
    if (!chainsToRoots(leaf, [...others, ...known.filter((cert) => !others.includes(cert))], roots)) cutOnes.push(cut(socket));
  }
  return cutOnes;
}

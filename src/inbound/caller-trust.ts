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
// (and the intermediates of this sidecar's own chain), is signed by a root of the new bundle:
// during a rotation a leaf of the new root comes with a cross certificate to the old root as
// well, and is kept. A resumed TLS session (with `inbound.sessionResumption: true`) shows its
// leaf alone: it is judged through the intermediates of the paths found for the other callers
// (and ours); found no path, it is cut, and the caller's next connection is a full handshake
// (the bundle change retired the tickets).

import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { bundleRoots, chainsToRoots, issuerIndex } from '../pki/chain-to-roots.js';
import { presentedChain } from '../identity/peer-validity.js';
import { peerX509 } from '../pki/peer-x509.js';

/**
 * The caller's leaf and the other certificates its handshake showed (none on a resumed session),
 * each once: the walk is the one every path check makes (presentedChain), and a repeat ends
 * nothing (it ended this walk, and a caller sending its leaf twice before its issuer was cut at
 * a bundle change though it chained to a kept root).
 */
function presentedPath(socket: TLSSocket): X509Certificate[] | undefined {
  const leaf = peerX509(socket);
  if (leaf === undefined) return undefined;
  const seen = new Set<string>();
  return presentedChain(leaf).certs.filter((cert) => {
    if (seen.has(cert.fingerprint256)) return false;
    seen.add(cert.fingerprint256);
    return true;
  });
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
 * returns the SPIFFE IDs (or addresses) of the callers cut, one per connection. One search per
 * caller's leaf, not per connection: a caller's thousand connections (maxConnectionsPerCaller)
 * cost what one does, and what one caller presents costs at most one search's checks
 * (chain-to-roots.ts) however many connections carry it.
 */
export function cutUntrustedCallers(sockets: Iterable<Socket>, roots: readonly X509Certificate[], ownChainPem: string, cut: (socket: TLSSocket) => string): string[] {
  const open = [...sockets].filter((socket) => !socket.destroyed) as TLSSocket[];
  const own = bundleRoots(ownChainPem).slice(1);
  const byLeaf = new Map<string, { leaf: X509Certificate; presented: Map<string, X509Certificate>; sockets: TLSSocket[] }>();
  for (const socket of open) {
    const path = presentedPath(socket);
    if (path === undefined) continue;
    const [leaf, ...others] = path as [X509Certificate, ...X509Certificate[]];
    let caller = byLeaf.get(leaf.fingerprint256);
    if (caller === undefined) byLeaf.set(leaf.fingerprint256, (caller = { leaf, presented: new Map(), sockets: [] }));
    caller.sockets.push(socket);
    if (!socket.isSessionReused()) for (const cert of others) caller.presented.set(cert.fingerprint256, cert);
  }
  const nowMs = Date.now();
  const cutOnes: string[] = [];
  const cutAll = (callerSockets: readonly TLSSocket[]) => {
    for (const socket of callerSockets) cutOnes.push(cut(socket));
  };
  // Callers with a full handshake first, through what they presented and our own chain. The
  // intermediates of the paths found are the pool a resumed session's bare leaf is judged
  // with: only certificates that chain to a kept root, so what a caller presents beside its
  // path (certificates of its own making, named like another issuer) never reaches the pool,
  // where it cost other callers' searches their budget and had them cut (review of 9eef41b)
  const pathCerts = new Map<string, X509Certificate>(own.map((cert) => [cert.fingerprint256, cert]));
  const resumedOnly: Array<{ leaf: X509Certificate; sockets: TLSSocket[] }> = [];
  for (const caller of byLeaf.values()) {
    if (caller.presented.size === 0) {
      resumedOnly.push(caller);
      continue;
    }
    const path: X509Certificate[] = [];
    if (chainsToRoots(caller.leaf, [...caller.presented.values(), ...own], roots, nowMs, { checks: 0 }, undefined, path)) {
      for (const cert of path) pathCerts.set(cert.fingerprint256, cert);
    } else cutAll(caller.sockets);
  }
  const pool = issuerIndex(pathCerts.values(), nowMs);
  for (const { leaf, sockets: callerSockets } of resumedOnly) {
    if (!chainsToRoots(leaf, [], roots, nowMs, { checks: 0 }, pool)) cutAll(callerSockets);
  }
  return cutOnes;
}

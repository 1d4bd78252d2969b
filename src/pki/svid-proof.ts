// The proof a renewal carries instead of a TLS client certificate: the current SVID (leaf, then
// the certificates handed out with it) and a signature by the SVID's key over a value both ends
// of this one TLS 1.3 connection derive from its handshake (the RFC 8446 §7.5 exporter; the
// same binding as RFC 9266's tls-exporter), sent as `Authorization: SVID <proof>`.
//
// Why not a client certificate: a server that asks for one has OpenSSL check the signatures of
// whatever chain a client presents, trusted or not, before the server sees the connection, and
// Node 20 offers no verify depth, list limit or callback to stop it. A review made the CA spend
// 0.4 s of CPU on each handshake of anyone who could reach its port (70 self-made intermediates
// with expensive RSA keys), no token or SVID needed. The CA now asks for no certificate; it
// judges this proof after the handshake, under its rate limit, walking a bounded path down from
// its own roots (src/ca/svid-proof-check.ts), so no key it does not vouch for is ever used.
//
// Form: `<signature>.<leaf>.<issuer>[.<more>]`, each part base64url of DER without padding.
// A proof is good on its connection only: a copy sent on another connection (a log line, a
// proxy) does not verify there. Both the sidecar (identity/ca-exchange.ts) and the CA read this.

import { createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { pemBlocks } from './pem.js';

const SVID_PROOF_SCHEME = 'SVID';

/** Certificates one proof may carry: leaf, issuer, and a root rotation's cross certificate (3), one spare. */
const MAX_PROOF_CERTIFICATES = 4;

/** The exporter's label (RFC 8446 §7.5: labels of private use start with "EXPORTER-"). */
const EXPORTER_LABEL = 'EXPORTER-meshcar-svid-proof';
const EXPORTER_BYTES = 32;
/** Prefixed to the exported value, so that the signature means this and nothing else. */
/** TLS 1.3 treats an empty context as none (RFC 8446 §7.5); Node's types ask for one. */
const NO_CONTEXT = Buffer.alloc(0);
const CONTEXT = Buffer.from('meshcar SVID proof, version 1\0', 'latin1');

/**
 * What the SVID's key signs on this connection, or why there is nothing to sign: only TLS 1.3's
 * exporter covers the whole handshake in every case (TLS 1.2's is only as good as the extended
 * master secret, which Node does not let either end see or require).
 */
export function proofMessage(socket: TLSSocket): Buffer | string {
  const protocol = socket.getProtocol();
  if (protocol !== 'TLSv1.3') return `an SVID proof needs TLS 1.3, whose exporter binds it to this connection; this connection is ${protocol ?? 'not TLS'}`;
  return Buffer.concat([CONTEXT, socket.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, NO_CONTEXT)]);
}

/** The Authorization header's value proving, on `socket`, the SVID `chainPem` with its key. */
export function svidProofHeader(socket: TLSSocket, chainPem: string, key: KeyObject | string): string {
  const message = proofMessage(socket);
  if (typeof message === 'string') throw new Error(message);
  const certificates = pemBlocks(chainPem).filter((block) => block.label === 'CERTIFICATE').map((block) => block.der);
  if (certificates.length === 0) throw new Error('the SVID chain holds no certificate');
  const privateKey = typeof key === 'string' ? createPrivateKey(key) : key;
  // ECDSA's signature as DER, RSA's as PKCS #1 v1.5: what verify() takes from the leaf's key
  const signature = sign('sha256', message, privateKey);
  return `${SVID_PROOF_SCHEME} ${[signature, ...certificates.slice(0, MAX_PROOF_CERTIFICATES)].map((part) => part.toString('base64url')).join('.')}`;
}

export interface ReadProof {
  readonly signature: Buffer;
  /** DER, leaf first. */
  readonly certificates: readonly Buffer[];
}

/** The parts of the credentials after `SVID `, or why they are no proof (one line). */
export function readSvidProof(credentials: string): ReadProof | string {
  const parts = credentials.split('.');
  if (parts.length < 2) return 'it needs a signature and at least the SVID leaf, separated by dots';
  if (parts.length > MAX_PROOF_CERTIFICATES + 1) return `it carries ${parts.length - 1} certificates; at most ${MAX_PROOF_CERTIFICATES} (leaf, issuer, cross certificate) are read`;
  const decoded: Buffer[] = [];
  for (const [index, part] of parts.entries()) {
    const bytes = Buffer.from(part, 'base64url');
    // Node decodes around junk: only the canonical form (no padding, no stray characters) is taken
    if (part.length === 0 || bytes.toString('base64url') !== part) return `its part ${index + 1} is not base64url without padding`;
    decoded.push(bytes);
  }
  const [signature, ...certificates] = decoded as [Buffer, ...Buffer[]];
  return { signature, certificates };
}

/** Whether `signature` is the proof of `publicKey`'s holder on `socket` (a key type verify() does not take counts as not). */
export function proofVerifies(message: Buffer, publicKey: KeyObject, signature: Buffer): boolean {
  try {
    return verify('sha256', message, publicKey, signature);
  } catch {
    return false;
  }
}

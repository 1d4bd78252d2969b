// What a TLS peer's certificates cost to check, read from their DER (pki/spki-read.ts), and what
// a failed handshake cost this side. OpenSSL parses every certificate a peer presents, decoding
// its key, and checks the signatures of the chain it builds, with keys the peer made; Node 20
// gives no verify depth, certificate-list size or verify callback to bound that (Envoy would cap
// it with max_verify_depth). Ten self-made RSA-3072 intermediates with 3,064-bit public exponents
// cost 62 ms of CPU per handshake (4 ms for a caller of the mesh), the outbound 80 ms per dial;
// an EC key with explicit parameters over a crafted prime field ~250 ms to decode in a 513-byte
// certificate, before any signature. So what a chain costs cannot be read from its size:
// - judgeChain judges a chain: more certificates than a mesh SVID path, a key no SVID
//   holds, or keys whose checks together cost far more than a mesh path's. The inbound's
//   handshake gate (handshake-gate.ts) applies it to a caller's certificate message before
//   OpenSSL parses it, so a failed inbound handshake is charged the bytes it read and the
//   checks of the chain it passed beyond a mesh path's (failedCallerHandshake);
// - the outbound's dials are not gated, and a failed one is judged by where it failed: the
//   server's certificates reported (the handshake ran to its end and failed on the chain or the
//   SPIFFE ID), costly when judgeChain says so or more bytes came than those certificates
//   and the flight's other messages explain (certificates Node did not link into the chain,
//   which OpenSSL parsed all the same); not reported after more than a ServerHello was read,
//   costly, since the certificates it may have sent cannot be seen; otherwise the bytes read.
// handshake-budgets.ts turns these into a budget per peer address (the inbound's callers,
// connection-caps.ts; the outbound's endpoints, outbound/dial-budgets.ts), charging bytes beyond
// 2 KiB a failure; plain HTTP to the inbound's port is not counted (it is answered with a 400).

import type { TLSSocket } from 'node:tls';
import { publicKeyFacts, type KeyFacts } from '../pki/spki-read.js';
import { presentedChainOf } from './peer-certificate.js';
import { certificatesOf } from './tls-messages.js';

/** Certificates a mesh SVID path may have as sent: leaf, issuer, a cross-signed issuer, root. */
const MAX_MESH_CHAIN = 4;
const MAX_RSA_BITS = 8_192;
/** The largest RSA exponent the CA signs (pki/keys.ts): 2^256 - 1. */
const MAX_RSA_EXPONENT_BITS = 256;
/** What the checks with a chain's keys may cost together (ms, this machine): a P-521 leaf, issuer and root (3.6) pass, four P-521 keys do not. */
const MAX_CHAIN_CHECK_MS = 4;
/** What a mesh path's checks cost at most with P-256 or RSA-2048 keys (a leaf and its issuer, ms): a failed handshake within it is charged only its bytes. */
const MESH_PATH_CHECK_MS = 0.25;
/** A failed handshake's checks beyond a mesh path's, charged as bytes: a millisecond of CPU as 1 KiB of the address's budget. */
const BYTES_PER_CHECK_MS = 1024;
/** More than a ServerHello (and its ChangeCipherSpec) read by the outbound: the server's certificates may have come. */
const SERVER_HELLO_BYTES = 256;
/** What a server's flight holds besides its certificates and signature: ServerHello, EncryptedExtensions, a CertificateRequest naming its roots (~100 bytes each), Finished, framing: ~425 bytes measured with one root. */
const SERVER_FLIGHT_OTHER_BYTES = 768;

/** What checking a signature with a key costs (ms, this machine), Infinity for a key no SVID holds. */
function checkMs(key: KeyFacts): number {
  switch (key.type) {
    case 'rsa':
      // the CA takes exponents up to 2^256 (a check costs about their bit length's share more)
      return key.bits > MAX_RSA_BITS || key.exponentBits > MAX_RSA_EXPONENT_BITS ? Infinity : 0.03 * (key.bits / 2048) ** 2 * Math.max(1, key.exponentBits / 17);
    case 'ec':
      return { 'P-256': 0.1, 'P-384': 0.5, 'P-521': 1.2, other: Infinity }[key.curve];
    case 'ed25519':
      return 0.1;
    case 'ed448':
      return 0.2;
    default:
      return Infinity;
  }
}

/** The size of a signature made with a key (bytes), as a CertificateVerify carries it. */
function signatureBytes(key: KeyFacts): number {
  if (key.type === 'rsa') return Math.ceil(key.bits / 8);
  if (key.type === 'ec') return { 'P-256': 72, 'P-384': 104, 'P-521': 139, other: 0 }[key.curve];
  return key.type === 'ed448' ? 114 : 64;
}

type Chain = { readonly certificates: readonly Buffer[]; readonly total: number };

/** A key no SVID holds, in words. */
function keyWords(key: KeyFacts): string {
  if (key.type === 'rsa') return `an RSA key of ${key.bits} bits with a ${key.exponentBits}-bit exponent`;
  if (key.type === 'ec') return 'an EC key with explicit parameters or on a curve other than P-256, P-384, P-521';
  return 'a DSA key, or a key of a type Node does not name';
}

/**
 * A chain a peer presented (the first certificates as DER, and how many in all), judged: `why`
 * checking it costs far more than a mesh SVID's, in words (undefined when it does not), and what
 * its checks cost by this estimate (ms, this machine).
 */
export function judgeChain(chain: Chain): { readonly why: string | undefined; readonly checkMs: number } {
  if (chain.total > MAX_MESH_CHAIN) return { why: `${chain.total} certificates, more than a mesh SVID path's ${MAX_MESH_CHAIN}`, checkMs: Infinity };
  let ms = 0;
  for (const der of chain.certificates) {
    const key = publicKeyFacts(der);
    const cost = checkMs(key);
    if (cost === Infinity) return { why: `a certificate with ${keyWords(key)}, which no SVID holds`, checkMs: cost };
    ms += cost;
  }
  return { why: ms > MAX_CHAIN_CHECK_MS ? `keys whose checks together cost about ${ms.toFixed(1)} ms, more than a mesh SVID path's ${MAX_CHAIN_CHECK_MS} ms` : undefined, checkMs: ms };
}

/** Whether checking the chain a peer presented costs far more than a mesh SVID's (judgeChain). */
export function costlyToCheck(chain: Chain): boolean {
  return judgeChain(chain).why !== undefined;
}

/** The bytes a flight with `chain` explains: its certificates and the leaf's signature, plus `other`. */
function explainedBytes(chain: Chain, other: number): number {
  let bytes = other;
  for (const der of chain.certificates) bytes += der.length + 5;
  const leaf = chain.certificates[0];
  return bytes + (leaf ? signatureBytes(publicKeyFacts(leaf)) : 0);
}

/** What a failed handshake cost: `costly` spends the peer's whole budget, else `bytes` are charged beyond the free part. */
export interface FailedHandshake {
  readonly bytes: number;
  readonly costly: boolean;
}

type OverTcp = TLSSocket & { _parent?: { bytesRead?: number; bytesWritten?: number } | null };

/**
 * A caller's handshake that failed with `err` on the inbound. The inbound's handshake gate
 * (handshake-gate.ts) judged the caller's certificates before OpenSSL parsed any and refused a
 * costly chain itself (spending the budget there); the checks of a chain it passed (`checkedMs`,
 * its estimate) are paid on a failure too: beyond a P-256 or RSA-2048 mesh path's they are
 * charged with the bytes read, so that failing handshakes with three P-521 certificates (4.6 ms
 * each, a review kept the inbound 90 % busy from one address) spend the budget, and a broken
 * caller of a P-256 or RSA mesh redialling never does.
 */
export function failedCallerHandshake(err: { code?: string }, socket: TLSSocket, checkedMs = 0): FailedHandshake {
  // plain HTTP: OpenSSL stopped at its first bytes
  if (err.code === 'ERR_SSL_HTTP_REQUEST' || err.code === 'ERR_SSL_HTTPS_PROXY_REQUEST') return { bytes: 0, costly: false };
  // the TCP socket counts what was read (the TLS socket only what it decrypted), and keeps the count after its close
  const read = (socket as OverTcp)._parent?.bytesRead ?? 0;
  return { bytes: read + Math.round(Math.max(0, checkedMs - MESH_PATH_CHECK_MS) * BYTES_PER_CHECK_MS), costly: false };
}

/** A dial's handshake that failed on the outbound (the TLS socket over the TCP socket dialled first). */
export function failedDialHandshake(socket: TLSSocket): FailedHandshake {
  const read = (socket as OverTcp)._parent?.bytesRead ?? 0;
  const presented = presentedChainOf(socket);
  if (presented) return { bytes: 0, costly: costlyToCheck(presented) || read > explainedBytes(presented, SERVER_FLIGHT_OTHER_BYTES) };
  return { bytes: read, costly: read > SERVER_HELLO_BYTES };
}

/** A certificate message judged before OpenSSL parses it: why it is refused (undefined when it may pass), and what its chain's checks cost (ms, judgeChain's estimate). */
export function judgeCertificateMessage(body: Buffer, tls13: boolean): { readonly refusal: string | undefined; readonly checkedMs: number } {
  const certificates = certificatesOf(body, tls13);
  if (certificates === undefined) return { refusal: 'a malformed certificate message', checkedMs: 0 };
  const judged = judgeChain({ certificates, total: certificates.length });
  return { refusal: judged.why, checkedMs: judged.checkMs };
}

/** Why a certificate message is refused before OpenSSL parses it, or undefined when it may pass. */
export function certificateMessageRefusal(body: Buffer, tls13: boolean): string | undefined {
  return judgeCertificateMessage(body, tls13).refusal;
}

// Addresses whose caller presented a certificate chain that failed verification and was costly
// to check, refused new connections for a while. OpenSSL checks every signature of the chain a
// caller presents before meshcar sees the connection, with keys the caller made: trusted or not,
// up to its 100 KB certificate message. Ten self-made RSA-3072 intermediates with 3,064-bit
// public exponents cost the inbound 62 ms of CPU per handshake (4 ms for a caller of the mesh),
// seventy about 400 ms, and Node 20 gives no verify depth, certificate-list size or verify
// callback to bound that before the work is done (Envoy would cap it with max_verify_depth). So
// the work is bounded per address after the fact: such a chain closes the address's other
// handshakes in progress (their certificates may be waiting, each as costly) and refuses its
// new connections at accept, before any crypto, for 1 s, doubling with each one that follows
// within 10 min, up to 60 s: one such handshake a minute per address at most (~0.7 % of a core
// at 400 ms each).
//
// Costly: more certificates than a mesh SVID path (leaf, issuer, a cross-signed issuer, root),
// or a key no SVID holds whose check costs far more than theirs (RSA above 8,192 bits or with
// another exponent than 65537, DSA, a type Node does not name); or a handshake that failed after
// the caller had sent more than 8 KiB (a mesh caller's whole handshake is 1.5-5 KB): OpenSSL
// checks a chain as its certificate message arrives, before the caller's proof of its key, so a
// caller that then breaks the handshake off is never reported with its chain. A chain refused for what
// callers of a mesh get wrong (an SVID of another CA, an expired one, a weak key) is cheap to
// check and refused as before: a broken caller behind a NAT does not shut out the callers that
// share its address. IPv6 addresses are keyed by their /64, which one host is usually given whole.

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { isIPv6 } from 'node:net';

/** The first refusal's time; each one within FORGET_AFTER_MS of the last doubles it. */
const FIRST_MS = 1_000;
const MAX_MS = 60_000;
/** An address quiet this long since its last refused chain starts again at FIRST_MS. */
const FORGET_AFTER_MS = 10 * 60_000;
/** Addresses remembered at most: beyond, the oldest is forgotten (~100 bytes each). */
const MAX_ADDRESSES = 10_000;

interface Penalty {
  /** Refused at accept until this time (performance.now() ms). */
  until: number;
  /** The next refusal's length. */
  nextMs: number;
  /** The last refused chain's time. */
  lastAt: number;
}

/** Certificates a mesh SVID path may have as sent: leaf, issuer, a cross-signed issuer, root. */
const MAX_MESH_CHAIN = 4;
const MAX_RSA_BITS = 8_192;

/** Whether checking the chain a caller presented (the first certificates as DER, and how many in all) cost far more than a mesh SVID's. */
export function costlyToCheck(chain: { readonly certificates: readonly Buffer[]; readonly total: number }): boolean {
  if (chain.total > MAX_MESH_CHAIN) return true;
  return chain.certificates.some((der) => {
    const key = new X509Certificate(der).publicKey;
    switch (key.asymmetricKeyType) {
      case 'ec':
      case 'ed25519':
      case 'ed448':
        return false;
      case 'rsa':
      case 'rsa-pss': {
        const { modulusLength = Infinity, publicExponent } = key.asymmetricKeyDetails ?? {};
        return modulusLength > MAX_RSA_BITS || publicExponent !== 65537n;
      }
      default:
        return true;
    }
  });
}

/** More than a mesh caller sends in a whole handshake (ClientHello, certificates, the rest: 1.5-5 KB). */
const MAX_MESH_HANDSHAKE_BYTES = 8_192;

/** Whether a caller whose handshake failed with `err` had sent more than a mesh caller's whole handshake. */
export function largeFailedHandshake(err: { code?: string }, socket: TLSSocket): boolean {
  // plain HTTP to the TLS port: OpenSSL stopped at its first bytes, however many came with them
  // (a request with large cookies), and nothing was checked (plain-http-answer.ts answers it)
  if (err.code === 'ERR_SSL_HTTP_REQUEST' || err.code === 'ERR_SSL_HTTPS_PROXY_REQUEST') return false;
  // the accepted TCP socket counts what was read (the TLS socket over it counts nothing), and
  // keeps the count after its close
  const raw = (socket as TLSSocket & { _parent?: { bytesRead?: number } | null })._parent;
  return (raw?.bytesRead ?? 0) > MAX_MESH_HANDSHAKE_BYTES;
}

/** The key an address is judged by: the address, or an IPv6 address's /64 (an IPv4-mapped one as IPv4). */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as hex without leading zeros (a zone id dropped). */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const part = (text: string) => (text === '' ? [] : text.split(':'));
  const groups = tail === undefined ? part(head) : [...part(head), ...Array<string>(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

export class RefusedChains {
  private readonly penalties = new Map<string, Penalty>();

  constructor(private readonly now: () => number) {}

  /** How long `key` is still refused at accept (ms), 0 when it is not. */
  refusedFor(key: string): number {
    const penalty = this.penalties.get(key);
    if (penalty === undefined) return 0;
    const now = this.now();
    if (now >= penalty.until && now - penalty.lastAt >= FORGET_AFTER_MS) this.penalties.delete(key);
    return Math.max(0, penalty.until - now);
  }

  /** A caller at `key` presented a chain that failed verification: returns how long the address is refused now (ms). */
  refuse(key: string): number {
    const now = this.now();
    const last = this.penalties.get(key);
    const ms = last !== undefined && now - last.lastAt < FORGET_AFTER_MS ? last.nextMs : FIRST_MS;
    // deleted and set again: the Map's order is then the order of last refusals, oldest first
    this.penalties.delete(key);
    this.penalties.set(key, { until: now + ms, nextMs: Math.min(ms * 2, MAX_MS), lastAt: now });
    if (this.penalties.size > MAX_ADDRESSES) this.penalties.delete(this.penalties.keys().next().value as string);
    return ms;
  }
}

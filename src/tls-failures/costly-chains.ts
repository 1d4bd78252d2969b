// What a failed TLS handshake cost this side, as far as can be told after it. OpenSSL checks
// every signature of the chain the peer presents, with keys the peer made, before meshcar sees
// the connection; Node 20 gives no verify depth, certificate-list size or verify callback to
// bound that before the work is done (Envoy would cap it with max_verify_depth). The inbound asks
// every caller for a certificate; the outbound checks every upstream's. Ten self-made RSA-3072
// intermediates with 3,064-bit public exponents cost the inbound 62 ms of CPU per handshake (4 ms
// for a caller of the mesh), the outbound 80 ms per dial; seventy, which fit OpenSSL's 100 KB
// certificate message, about 400 ms. Two measures of it:
// - the bytes read from the peer before the handshake failed: a chain is checked as its
//   certificate message arrives, before the peer proves its key, so a peer that then breaks the
//   handshake off is never reported with its chain, while what a chain costs grows with its size
//   (~4.6 ms a KiB at worst); plain HTTP to the inbound's port is not counted (OpenSSL stops at
//   its first bytes, and it is answered with a 400);
// - a chain that was reported (the handshake ran to its end and the chain failed): costly when it
//   holds more certificates than a mesh SVID path, or a key no SVID holds whose check costs far
//   more than theirs (RSA above 8,192 bits or with another exponent than 65537, EC on a binary
//   curve, DSA, a type Node does not name). The certificates are as Node links them from the
//   leaf, which may stop short of what OpenSSL checked: the bytes are the measure that holds.
// handshake-budgets.ts turns these into a budget per peer address (the inbound's callers,
// connection-caps.ts; the outbound's endpoints, outbound/dial-budgets.ts).

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** Certificates a mesh SVID path may have as sent: leaf, issuer, a cross-signed issuer, root. */
const MAX_MESH_CHAIN = 4;
const MAX_RSA_BITS = 8_192;

/** Whether checking the chain a peer presented (the first certificates as DER, and how many in all) cost far more than a mesh SVID's. */
export function costlyToCheck(chain: { readonly certificates: readonly Buffer[]; readonly total: number }): boolean {
  if (chain.total > MAX_MESH_CHAIN) return true;
  return chain.certificates.some((der) => {
    const key = new X509Certificate(der).publicKey;
    switch (key.asymmetricKeyType) {
      case 'ec': {
        // a curve over a binary field (sect571r1: 2.3 ms a check, twenty P-256's) or one Node
        // cannot name; the prime curves cost at most P-521's ~1.1 ms
        const curve = key.asymmetricKeyDetails?.namedCurve;
        return curve === undefined || /^(sect|c2)/.test(curve);
      }
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

/** The bytes read from a peer whose handshake failed with `err`: what its chain may have cost (0 for plain HTTP, which OpenSSL read none of as a handshake). The TLS socket must run over a TCP socket of its own (a server's accepted one; a client's dialled first). */
export function failedHandshakeBytes(err: { code?: string }, socket: TLSSocket): number {
  if (err.code === 'ERR_SSL_HTTP_REQUEST' || err.code === 'ERR_SSL_HTTPS_PROXY_REQUEST') return 0;
  // the TCP socket counts what was read (the TLS socket over it counts only what it decrypted),
  // and keeps the count after its close
  const raw = (socket as TLSSocket & { _parent?: { bytesRead?: number } | null })._parent;
  return raw?.bytesRead ?? 0;
}

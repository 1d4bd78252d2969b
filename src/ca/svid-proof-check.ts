// Judges a renewal's SVID proof (src/pki/svid-proof.ts): the SVID must chain to a root this CA
// trusts now, be within its dates on this request, be an SVID leaf with one URI name, and its
// key must have signed this connection's exporter value. What OpenSSL checked in the handshake
// when the CA asked for a client certificate is checked here, with one difference that is the
// point: the path is walked down from the CA's own roots, so every signature is checked with a
// key the CA already vouches for (a root's, then an issuer's a root signed), never with a key a
// client made up. A proof costs a few signature checks with our keys whatever it carries, and
// the rate limit (server.ts) comes before it.

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { MeshcarError } from '../errors.js';
import { uriSans } from '../pki/x509-read.js';
import { basicConstraintsCa, KEY_USAGE, keyUsageBits } from '../pki/cert-extensions.js';
import { certificateDates } from '../pki/cert-dates.js';
import { proofMessage, proofVerifies, readSvidProof } from '../pki/svid-proof.js';
import { svidLeafProblem } from '../identity/svid-leaf.js';

/** The TLS client authentication purpose (RFC 5280 §4.2.1.12). */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

const refused = (message: string) => new MeshcarError('bad_svid', message);
const JOIN_TOKEN = 'request a new SVID with a join token';

/** The SVID leaf a proof on `socket` proves, judged against `roots` at `nowMs`; throws bad_svid saying why not. */
export function judgeSvidProof(socket: TLSSocket, credentials: string, roots: readonly X509Certificate[], nowMs: number): X509Certificate {
  // a client gone (a reset after its body) leaves no connection to prove anything on: its leaving
  // is recorded as such, not as a bad SVID (getProtocol() of a closed socket is null)
  if (socket.destroyed) throw new MeshcarError('client_closed', 'the client closed the connection before its SVID proof was judged');
  const proof = readSvidProof(credentials);
  if (typeof proof === 'string') throw refused(`the SVID proof cannot be read: ${proof}`);
  const certificates: X509Certificate[] = [];
  for (const [index, der] of proof.certificates.entries()) {
    try {
      certificates.push(new X509Certificate(der));
    } catch {
      throw refused(`the SVID proof's certificate ${index + 1} is no DER X.509 certificate`);
    }
  }
  const leaf = certificates[0] as X509Certificate;
  const path = pathFromRoots(certificates, roots);
  if (path === undefined) throw refused(noPathReason(certificates, roots));
  for (const [index, cert] of path.entries()) {
    const problem = datesProblem(cert, nowMs);
    if (problem !== undefined) throw refused(`${index === 0 ? 'the SVID' : index === path.length - 1 ? 'the root it chains to' : 'its issuer'} ${problem}; ${JOIN_TOKEN}`);
  }
  const notLeaf = svidLeafProblem(leaf.raw, leaf.ca);
  if (notLeaf !== undefined) throw refused(`the proof's certificate is no SVID leaf: ${notLeaf}`);
  const uris = uriSans(leaf);
  if (uris.length !== 1) throw refused(`the SVID has ${uris.length} URI names; an SVID has exactly one`);
  const purposes = leaf.keyUsage; // Node's name for the extended key usage list
  if (purposes !== undefined && !purposes.includes(CLIENT_AUTH) && !purposes.includes(ANY_EXTENDED_KEY_USAGE)) throw refused('the SVID is not for TLS clients (its extended key usage lacks clientAuth)');
  const message = proofMessage(socket);
  if (typeof message === 'string') throw refused(message);
  if (!proofVerifies(message, leaf.publicKey, proof.signature)) {
    throw refused("the SVID proof's signature does not verify with the SVID's key for this connection: it was made for another connection, or with another key");
  }
  return leaf;
}

/**
 * The path from the leaf (presented[0]) up to a root of `roots`, root last, or undefined. Walked
 * down: first the presented certificates a root signed, then those one of them signed, and so on
 * until the leaf; in any order they came (OpenSSL took them so, and a leaf sent twice or a
 * stranger among them did not matter), each taken once, never the leaf as a signer. Every
 * signature is checked with a root's key or one a root vouched for by then.
 */
function pathFromRoots(presented: readonly X509Certificate[], roots: readonly X509Certificate[]): X509Certificate[] | undefined {
  const leaf = presented[0] as X509Certificate;
  const seen = new Set([leaf.fingerprint256, ...roots.map((root) => root.fingerprint256)]);
  // a root or the leaf sent along is no signer of the path: the bundle's root, and the leaf, are
  const waiting = presented.slice(1).filter((cert) => !seen.has(cert.fingerprint256) && seen.add(cert.fingerprint256));
  let frontier: X509Certificate[][] = roots.filter(isCa).map((root) => [root]);
  while (frontier.length > 0) {
    const reached = frontier.find(([signer]) => leaf.checkIssued(signer as X509Certificate) && leaf.verify((signer as X509Certificate).publicKey));
    if (reached !== undefined) return [leaf, ...reached];
    const next: X509Certificate[][] = [];
    for (const cert of [...waiting]) {
      const above = frontier.find(([signer]) => cert.checkIssued(signer as X509Certificate) && cert.verify((signer as X509Certificate).publicKey));
      if (above === undefined || !isCa(cert)) continue;
      waiting.splice(waiting.indexOf(cert), 1);
      next.push([cert, ...above]);
    }
    frontier = next;
  }
  return undefined;
}

/** A certificate that may sign others: basicConstraints cA, and keyCertSign when it has a keyUsage (RFC 5280 §4.2.1.3). */
function isCa(cert: X509Certificate): boolean {
  if (!basicConstraintsCa(cert.raw)) return false;
  const bits = keyUsageBits(cert.raw);
  return bits === undefined || (bits & KEY_USAGE.keyCertSign) !== 0;
}

/** Why no path was found, in words a person can act on. */
function noPathReason(presented: readonly X509Certificate[], roots: readonly X509Certificate[]): string {
  const [leaf, ...rest] = presented as [X509Certificate, ...X509Certificate[]];
  // no issuer of the leaf among what came (alone, or beside a root): our roots sign issuers, not
  // leaves, so it cannot be judged, whoever issued it
  if (!rest.some((cert) => leaf.checkIssued(cert)) && !roots.some((root) => leaf.checkIssued(root))) {
    return `the SVID came ${rest.length === 0 ? 'alone, ' : ''}without the issuer that signed it${rest.length === 0 ? '' : ` (none of the ${rest.length} certificates with it did)`}: send the chain the CA handed out (leaf, then issuer); an SVID of another CA needs a new SVID with a join token`;
  }
  return `the SVID is not issued by this CA or does not chain to a root this CA still trusts (another CA's, or under a root this CA has retired); ${JOIN_TOKEN}`;
}

/** "expired at ..." or "is not valid yet (from ...)", or undefined within the dates. */
function datesProblem(cert: X509Certificate, nowMs: number): string | undefined {
  const dates = certificateDates(cert);
  if (typeof dates === 'string') return `has a validity date this host cannot read: ${dates}`;
  if (nowMs > dates.notAfter.getTime()) return `expired at ${dates.notAfter.toISOString()}`;
  if (nowMs < dates.notBefore.getTime()) return `is not valid yet (from ${dates.notBefore.toISOString()})`;
  return undefined;
}

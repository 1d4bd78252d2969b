// Who is asking the CA for a certificate (POST /v1/sign): a join token (Authorization: Bearer),
// or the caller's current SVID as its client certificate, judged now and not only at the
// handshake: the path must chain to a root the CA still trusts (a root retired since must not
// renew its leaves) and be within its dates on this request (a keep-alive connection can outlive
// its certificate). Separate from server.ts, which serves the API and its connections: this is
// the decision of which grant a request carries, or why it carries none.

import type { IncomingMessage } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { MeshcarError } from '../errors.js';
import { uriSans } from '../pki/x509-read.js';
import { svidLeafProblem } from '../identity/svid-leaf.js';
import { chainsToRoots } from '../pki/chain-to-roots.js';
import { peerPathValidity, presentedChain, validityProblem } from '../identity/peer-validity.js';
import type { Authority, Grant } from './authority.js';

/** The grant a sign request carries, and who asked, for the audit log. */
export async function authenticate(req: IncomingMessage, authority: Authority): Promise<{ grant: Grant; who: Record<string, unknown> }> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    // auth-scheme names are case-insensitive (RFC 9110 11.1, RFC 6750 2.1); the token is checked as it is
    const match = /^bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization);
    if (!match) throw new MeshcarError('unauthenticated', 'the Authorization header must be "Bearer <join token>"');
    const grant = await authority.grantFromToken(match[1] as string);
    return { grant, who: { auth: 'token', tokenId: grant.via === 'token' ? grant.claims.jti : undefined } };
  }
  const socket = req.socket as TLSSocket;
  const peer = peerCertificateOf(socket);
  if (!peer) throw new MeshcarError('unauthenticated', 'send a join token (Authorization: Bearer ...) or present your current SVID as client certificate');
  if (!socket.authorized) throw new MeshcarError('bad_client_certificate', clientCertificateProblem(socket, peer));
  // the handshake's verdict is as old as the connection, and was given against the roots of
  // that moment: a root retired since (an emergency rotation) must not renew its leaves, on a
  // keep-alive connection or on the first one after the retire, before the TLS context swaps
  if (!chainsToRoots(peer, presentedChain(peer).certs.slice(1), authority.material.roots)) throw new MeshcarError('bad_client_certificate', 'the client certificate does not chain to a root this CA still trusts (retired?); request a new SVID with a join token');
  // and the dates are checked now, against the bundle as every side does: a root rotation's
  // cross certificate, which travels in every chain while a new root is active, is no part of
  // the path (counted, renewals were refused from the old root's end on)
  const expired = validityProblem(peerPathValidity(peer, socket.isSessionReused(), Date.now(), authority.material.bundlePem), Date.now());
  if (expired !== undefined) throw new MeshcarError('bad_client_certificate', `the client certificate ${expired}; request a new SVID with a join token`);
  const uris = uriSans(peer);
  if (uris.length !== 1) throw new MeshcarError('bad_client_certificate', `the client certificate has ${uris.length} URI names; an SVID has exactly one`);
  // a signing certificate chaining to our roots is no SVID, as every sidecar judges it
  const notLeaf = svidLeafProblem(peer.raw, peer.ca);
  if (notLeaf !== undefined) throw new MeshcarError('bad_client_certificate', `the client certificate is no SVID leaf: ${notLeaf}`);
  return { grant: authority.grantFromCertificate(uris[0] as string), who: { auth: 'certificate', clientSerial: peer.serialNumber.toLowerCase() } };
}

/** OpenSSL's verdicts when it found no issuer for the leaf. */
const NO_ISSUER = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT']);

/** Why a presented client certificate is not accepted, in words a person can act on. */
function clientCertificateProblem(socket: TLSSocket, peer: X509Certificate): string {
  const reason = String(socket.authorizationError ?? 'unknown');
  if (reason === 'CERT_HAS_EXPIRED') return 'the client certificate has expired; request a new SVID with a join token';
  if (reason === 'CERT_NOT_YET_VALID') return 'the client certificate is not valid yet';
  // a leaf sent alone (curl --cert with the certificate file, not the chain): our roots sign
  // issuers, not leaves, so it cannot be verified, whoever issued it
  if (NO_ISSUER.has(reason) && presentedChain(peer).certs.length === 1) {
    return `the client certificate came alone, without the issuer that signed it (${reason}): present the chain the CA handed out (leaf, then issuer); a certificate of another CA needs a new SVID with a join token`;
  }
  // a retired root's leaves end here: the handshake is made against the roots of now
  return `the client certificate is not issued by this CA (${reason}): another CA's, or under a root this CA has retired; request a new SVID with a join token`;
}

/**
 * The client's certificate on a connection, read once: Node's getPeerX509Certificate() hands
 * the presented issuers over to the first object it makes, and later calls on the same
 * connection get the leaf without them (Node 20), so a keep-alive connection's second request
 * would present a path that ends at the leaf.
 */
const peers = new WeakMap<TLSSocket, X509Certificate>();

function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  let cert = peers.get(socket);
  if (cert === undefined) {
    cert = socket.getPeerX509Certificate();
    if (cert !== undefined) peers.set(socket, cert);
  }
  return cert;
}

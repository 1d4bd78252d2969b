// The peer's certificate of a handshake that failed. Node destroys a socket whose peer failed
// verification before any public event carries it, so the certificate is taken at the socket's
// 'secure' event, which comes first: on the inbound server the socket is reached through the
// 'keylog' event (the first event that hands over the TLSSocket; its secrets are never read),
// on the outbound client where the socket is made. Kept in a WeakMap: nothing outlives the socket.
// Also the caller's address, for a failure described once its socket has closed, and a refused
// caller's chain verdict (OpenSSL's code and text), which Node reduces to a code.

import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, Server, TLSSocket } from 'node:tls';
import { peerX509 } from '../pki/peer-x509.js';

/** The raw DER, parsed only when a failure is described: parsing costs ~0.2 ms, on every handshake. */
const certificates = new WeakMap<TLSSocket, Buffer | X509Certificate>();
/** The remote address and port while the socket is open (a socket destroyed by Node forgets them). */
const remotes = new WeakMap<TLSSocket, { address: string | undefined; port: number | undefined }>();

/**
 * Remembers the peer certificate of `socket` once its handshake is done, verified or not
 * (a client: its dial may fail on the chain or on the server's SPIFFE ID, both after 'secure').
 */
export function watchPeerCertificate(socket: TLSSocket): void {
  if (remotes.has(socket)) return;
  remotes.set(socket, { address: socket.remoteAddress, port: socket.remotePort });
  socket.prependOnceListener('secure', keepPeerCertificate);
}

function keepPeerCertificate(this: TLSSocket): void {
  // the certificates the server presented (the leaf among them), to judge what checking them
  // cost should the dial fail (costly-chains.ts: on its chain, or on its SPIFFE ID); the raw
  // bytes, parsed only if a failure is described. One detailed build per dial (~0.1 ms):
  // dials are few, sessions long-lived
  keepPresentedChain(this);
}

/**
 * The chain verdicts of refused callers: Node's Error, with OpenSSL's code and text. Node keeps
 * only the code (socket.authorizationError), and names few of OpenSSL's codes: a leaf used as
 * an issuer or a name-constraint violation is UNSPECIFIED, said only by the text.
 */
const verdicts = new WeakMap<TLSSocket, Error>();

/** The chain verdict OpenSSL recorded, read before Node acts on it: falsy when the chain verified, true when it cannot be read. */
function chainVerdict(socket: TLSSocket): unknown {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  const verifyError = handle?.verifyError;
  return typeof verifyError !== 'function' || verifyError.call(handle);
}

/** The certificates a peer presented (DER, leaf first, as Node walks them from the leaf), at most MAX_KEPT_CHAIN of them: a caller's when its chain failed verification, a server's always. */
const presentedChains = new WeakMap<TLSSocket, { readonly certificates: readonly Buffer[]; readonly total: number }>();
const MAX_KEPT_CHAIN = 8;

/** The certificates a peer presented (a caller whose chain failed verification, any upstream): the first few (DER, leaf first) and how many in all. */
export function presentedChainOf(socket: TLSSocket): { readonly certificates: readonly Buffer[]; readonly total: number } | undefined {
  return presentedChains.get(socket);
}

function keepPresentedChain(socket: TLSSocket): void {
  const chain: Buffer[] = [];
  const seen = new Set<object>();
  let total = 0;
  // the detailed form links each certificate to its issuer among those presented; a self-signed
  // one links to itself
  for (let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); cert?.raw && !seen.has(cert); cert = cert.issuerCertificate) {
    seen.add(cert);
    total++;
    if (chain.length < MAX_KEPT_CHAIN) chain.push(cert.raw);
  }
  presentedChains.set(socket, { certificates: chain, total });
  // the leaf, for the failure's words: the same object Node built, not a second build of it
  if (chain[0]) certificates.set(socket, chain[0]);
}

function keepRefusedCallerCertificate(this: TLSSocket): void {
  // Node destroys a caller whose chain failed before 'secureConnection', taking the certificate
  // with it: only that caller's is copied here. getPeerCertificate() builds a whole object with
  // three fingerprints (~36 µs, more on a cold cache) that every accepted handshake paid for;
  // a caller refused later (bad SPIFFE ID, expired on resumption) is still connected when the
  // failure is described, and its certificate is read then (peerCertificateOf).
  const verdict = chainVerdict(this);
  if (!verdict) return;
  if (verdict instanceof Error) verdicts.set(this, verdict);
  keepPresentedChain(this);
}

/** Why a refused caller's chain failed verification (OpenSSL's code and text); undefined when it did not, or was not seen. */
export function chainVerdictOf(socket: TLSSocket): Error | undefined {
  return verdicts.get(socket);
}

/** Every connection of the inbound server: the certificate of a refused caller can be described. */
export function watchServerPeerCertificates(server: Server): void {
  // the accepted TCP socket's address, read once now: Node keeps it for after the close, where
  // remoteOf looks for a caller gone before its handshake's first key (connection-caps.ts has
  // read it already; this keeps remoteOf from depending on that)
  server.on('connection', (raw: { remoteAddress?: string }) => void raw.remoteAddress);
  server.on('keylog', (_line: Buffer, socket: TLSSocket) => {
    if (remotes.has(socket)) return; // one 'keylog' per secret: five per TLS 1.3 handshake
    remotes.set(socket, { address: socket.remoteAddress, port: socket.remotePort });
    socket.prependOnceListener('secure', keepRefusedCallerCertificate);
  });
}

export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  const kept = parsed(socket);
  if (kept !== undefined || socket.destroyed) return kept;
  return peerX509(socket);
}

function parsed(socket: TLSSocket): X509Certificate | undefined {
  const seen = certificates.get(socket);
  if (seen === undefined || seen instanceof X509Certificate) return seen;
  const cert = new X509Certificate(seen);
  certificates.set(socket, cert);
  return cert;
}

/** The remote address and port, as seen while the socket was open. */
export function remoteOf(socket: TLSSocket): { address: string | undefined; port: number | undefined } {
  const seen = remotes.get(socket);
  // a caller gone before its handshake's first key (a broken ClientHello, then a close) was
  // never remembered above, and its closed TLSSocket tells nothing: the accepted TCP socket
  // under it (_parent, server side) still does, its address read when it was accepted
  // (watchServerPeerCertificates) and kept by Node once read
  const under = (socket as TLSSocket & { _parent?: { remoteAddress?: string; remotePort?: number } | null })._parent;
  return { address: socket.remoteAddress ?? seen?.address ?? under?.remoteAddress, port: socket.remotePort ?? seen?.port ?? under?.remotePort };
}

const kPeerCertificate = Symbol('meshcar.peerCertificate');

/** Carries the peer certificate (if seen) on a dial error, to where the failure is counted. */
export function withPeerCertificate<E>(err: E, socket: TLSSocket): E {
  if (err !== null && typeof err === 'object' && certificates.has(socket)) (err as Record<symbol, unknown>)[kPeerCertificate] = parsed(socket);
  return err;
}

export function peerCertificateOfError(err: unknown): X509Certificate | undefined {
  return err !== null && typeof err === 'object' ? ((err as Record<symbol, unknown>)[kPeerCertificate] as X509Certificate | undefined) : undefined;
}

// the issuer's key id, read without node-forge (a sidecar does not load it to explain a failure)
export { authorityKeyId } from '../pki/x509-read.js';

// The inbound TLS listener: mutual TLS with the workload's current SVID, TLS 1.2 at least,
// a client certificate required and verified against the trust bundle, ALPN h2 and
// http/1.1. After the handshake, the caller's certificate path must be within its dates (also
// on a resumed session, where Node reports the first handshake's verdict) and carry exactly
// one SPIFFE ID of our trust domain, or the connection is closed. A connection whose handshake
// does not finish within the handshake timeout is closed too; plain HTTP sent to the port gets
// a 400 saying where to send it (plain-http-answer.ts). Every refusal is counted by reason;
// none can throw.
//
// No session tickets unless `inbound.sessionResumption` asks for them: every caller then makes
// a full handshake, its chain verified against the bundle of that moment (a resumed session
// inherits its first handshake's verdict). Callers are other sidecars holding a few long-lived
// HTTP/2 sessions, so resumption saves little, while issuing TLS 1.3's two tickets made
// OpenSSL 3.0 decode the peer's certificate twice more: ~0.7-0.85 ms of a ~4.8 ms handshake.

import { constants } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import tls, { type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { X509Certificate } from 'node:crypto';
import { MTLS_SERVER_OPTIONS, SECURE_OPTIONS } from '../identity/tls-contexts.js';
import { classifyAuthorizationError, peerIdentity, type PeerRefusalReason } from '../identity/peer-identity.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import { classifyTlsErrorCode } from '../tls-failures/codes.js';
import { hostPort, inboundFailure } from '../tls-failures/describe.js';
import { gateOf, gateServerConnections } from '../tls-failures/gated-server.js';
import { answerPlainHttp } from '../tls-failures/plain-http-answer.js';
import { chainVerdictOf, remoteOf, watchServerPeerCertificates } from '../tls-failures/peer-certificate.js';
import { failedCallerHandshake } from '../tls-failures/costly-chains.js';
import { bundleRoots, rootsRemoved } from '../pki/chain-to-roots.js';
import { callerChains } from './caller-trust.js';

export interface TlsListenerOptions {
  readonly identity: WorkloadIdentity;
  readonly trustDomain: string;
  readonly logger: Logger;
  readonly observer: TrafficObserver;
  readonly handshakeTimeoutMs: number;
  /** Issue session tickets (TLS session resumption); false: full handshakes only. */
  readonly sessionResumption: boolean;
  /**
   * The trust bundle lost a root (caller-trust.ts): the open connections are the inbound's to
   * look at; `roots` are the new bundle's.
   */
  readonly onTrustNarrowed?: (roots: readonly X509Certificate[]) => void;
  /** A handshake from `address` failed: `costly` (tls-failures/costly-chains.ts) spends its whole budget, else `bytes` read from it are charged beyond the free part. */
  readonly onHandshakeFailed?: (address: string, bytes: number, costly: boolean) => void;
  /** A verified caller: the socket is theirs to serve, until `expiresAtMs` (its certificate path expires). */
  readonly onCaller: (socket: TLSSocket, id: SpiffeId, certificate: X509Certificate, expiresAtMs: number) => void;
}

/**
 * What a server without resumption adds to every secure context it gets (also after a
 * rotation); it replaces the identity's secureOptions, so their bits (no renegotiation) stay.
 */
const NO_TICKETS = Object.freeze({ secureOptions: SECURE_OPTIONS | constants.SSL_OP_NO_TICKET });

export function createTlsListener(options: TlsListenerOptions): tls.Server {
  const { identity, trustDomain, logger, observer, onCaller } = options;
  const contextExtras = options.sessionResumption ? undefined : NO_TICKETS;
  const server = tls.createServer({
    ...identity.tls().options,
    ...contextExtras,
    ...MTLS_SERVER_OPTIONS,
    ALPNProtocols: ['h2', 'http/1.1'],
    handshakeTimeout: options.handshakeTimeoutMs,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: 30_000,
  });
  // the caller's certificates are judged before OpenSSL parses them (tls-failures/handshake-gate.ts)
  gateServerConnections(server, (gate) => {
    const raw = gate.raw;
    const reason = gate.refusalReason;
    const what = reason === 'invalid_certificate' ? "the caller's certificates were refused before they were parsed" : "the caller's handshake was refused before its certificates were read";
    observer.tlsHandshakeFailed('inbound', reason, { peer: hostPort(raw.remoteAddress, raw.remotePort), message: `${what}: ${gate.refusal}` });
    logger.debug({ reason, remote: raw.remoteAddress, detail: gate.refusal }, 'inbound TLS handshake refused by the handshake gate');
    // a chain costly on its face spends the address's whole budget, as one OpenSSL reported does;
    // bytes that are no client's handshake are charged as read
    if (raw.remoteAddress !== undefined) options.onHandshakeFailed?.(raw.remoteAddress, raw.bytesRead, reason === 'invalid_certificate');
  });
  // new handshakes use the rotated certificate; open connections keep theirs
  identity.attachServer(server, contextExtras);
  // a refused caller's certificate, for the words of the failure (issuer, dates, ID)
  watchServerPeerCertificates(server);

  // The trust bundle a handshake was verified under, for the leaves peerIdentity keeps with
  // their path's window: a connection's context is fixed when it is accepted, so a handshake
  // that began before the bundle changed was verified under the old one. Within a handshake's
  // time of a change, no bundle is named (such leaves are read with their path, not kept).
  let anchorsPem = identity.tls().anchorsPem;
  let anchorsChangedAt = -Infinity;
  // a bundle that lost a root: handshakes under way then were verified under the old bundle,
  // and are checked against the new one (caller-trust.ts), as the open connections are
  let narrowed: { roots: readonly X509Certificate[]; intermediates: readonly X509Certificate[] } | undefined;
  const onRotated = () => {
    const next = identity.tls().anchorsPem;
    if (next === anchorsPem) return;
    const lostRoot = rootsRemoved(anchorsPem, next);
    anchorsPem = next;
    anchorsChangedAt = performance.now();
    // once a bundle has narrowed, handshakes under way are held to the bundle of now, which may
    // hold a root back again (held to the narrowed one, its callers were refused for a
    // handshake's time after the root came back)
    if (!lostRoot && narrowed === undefined) return;
    narrowed = { roots: bundleRoots(next), intermediates: bundleRoots(identity.current().chainPem).slice(1) };
    if (lostRoot) options.onTrustNarrowed?.(narrowed.roots);
  };
  identity.on('rotated', onRotated);
  server.once('close', () => identity.off('rotated', onRotated));
  const verifiedUnder = () => (performance.now() - anchorsChangedAt > options.handshakeTimeoutMs ? anchorsPem : undefined);

  server.on('secureConnection', (socket: TLSSocket) => {
    const result = peerIdentity(socket, trustDomain, Date.now(), verifiedUnder());
    if (!result.ok) {
      observer.tlsHandshakeFailed('inbound', result.reason, inboundFailure(socket, result.reason, result.message));
      logger.debug({ reason: result.reason, remote: socket.remoteAddress, resumed: socket.isSessionReused(), detail: result.message }, 'inbound connection refused');
      socket.destroy();
      return;
    }
    if (narrowed !== undefined && performance.now() - anchorsChangedAt <= options.handshakeTimeoutMs && !callerChains(socket, narrowed.roots, narrowed.intermediates)) {
      const message = "the caller's certificate chains only to a root the trust bundle no longer holds (its handshake began before the bundle changed)";
      observer.tlsHandshakeFailed('inbound', 'unknown_ca', inboundFailure(socket, 'unknown_ca', message));
      socket.destroy();
      return;
    }
    onCaller(socket, result.id, result.certificate, result.expiresAtMs);
  });

  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    const gate = gateOf(socket);
    // refused by the gate: told above, when it closed the connection
    if (gate?.refusal !== undefined) return void socket.destroy();
    const reason = handshakeFailureReason(err, socket);
    if (reason !== undefined) {
      // a refused chain is described by its verdict (OpenSSL's code and text), not by the bare
      // ECONNRESET that Node's destroy of the socket reports
      observer.tlsHandshakeFailed('inbound', reason, inboundFailure(socket, reason, chainVerdictOf(socket) ?? err));
      logger.debug({ reason, code: err.code, authorizationError: socket.authorizationError, remote: socket.remoteAddress }, 'inbound TLS handshake failed');
    }
    // its bytes, and the checks of the chain the gate passed beyond a mesh path's (tls-failures/costly-chains.ts)
    const address = remoteOf(socket).address;
    if (address !== undefined) {
      const cost = failedCallerHandshake(err, socket, gate?.checkedMs);
      options.onHandshakeFailed?.(address, cost.bytes, cost.costly);
    }
    // plain HTTP (`curl http://` to this port) is told where to go, with a 400, and closed within a bound
    if (answerPlainHttp(err, socket, 'inbound')) return;
    // Node only reports a handshake timeout (ERR_TLS_HANDSHAKE_TIMEOUT), leaving the socket
    // open: a peer that connects and never sends a ClientHello would hold a descriptor for ever
    socket.destroy();
  });

  return server;
}

/**
 * Why a handshake failed. With rejectUnauthorized, OpenSSL refuses a missing certificate
 * itself, while Node checks the chain after the handshake and only records the verdict on
 * the socket (authorizationError, a code: the verdict itself, with OpenSSL's text, is kept by
 * peer-certificate.ts) before destroying it; the error is then a bare ECONNRESET.
 */
export function handshakeFailureReason(err: { code?: string }, socket: TLSSocket): PeerRefusalReason | undefined {
  if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_client_cert';
  const verdict = chainVerdictOf(socket) ?? (socket.authorizationError as unknown as string | Error | null | undefined);
  if (verdict) return classifyAuthorizationError(verdict);
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return undefined;
  return classifyTlsErrorCode(err.code) ?? 'other';
}

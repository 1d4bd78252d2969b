// Each verified caller's connection once the listener (inbound.ts) took it: its one lifetime
// timer (closed when the caller's certificate path expires; HTTP/2 also retired at its maximum
// age), and its HTTP/2 session on either codec: Node's (session set up here, its streams in
// request-dispatch.ts; resets counted by a ResetGuard, a rapid-reset caller sent GOAWAY
// ENHANCE_YOUR_CALM) or meshcar's own (src/h2, which counts resets itself). Plain functions
// of the listener: nothing here runs per request.

import http2, { type IncomingHttpHeaders, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { cutUntrustedCallers } from './caller-trust.js';
import { H2Connection, type H2Stream, type IncomingHeaders } from '../h2/index.js';
import { h2SessionObserver } from '../http/h2-session-observer.js';
import { SENSITIVE_HEADERS } from '../http/sensitive-headers.js';
import { leftOut, leftOutFields } from '../log-per-key.js';
import type { Caller } from './caller.js';
import { ConnectionLifetime } from './connection-lifetime.js';
import { Http2Exchange } from './http2-exchange.js';
import { nodeSessionFault } from './node-session-faults.js';
import { probeSilentSession } from './node-session-probe.js';
import { countPingAcks } from './node-ping-bytes.js';
import type { InboundListener } from './inbound.js';
import { handle, kCaller, type WithCaller } from './request-dispatch.js';
import { attachGuard, countStreamEndedUnheard, ResetGuard, type ResetAbuse } from './reset-guard.js';

/** The connection's lifetime, noted on its socket when the caller was verified. */
export const kLifetime = Symbol('meshcar.inbound.lifetime');

export interface WithLifetime {
  [kLifetime]?: ConnectionLifetime;
}

/**
 * GOAWAY ENHANCE_YOUR_CALM, no new streams, and the connection cut a second later at most.
 * (session.destroy(err, code) alone was seen to close the socket without the peer ever
 * learning why, with its frames still queued; and a second later destroy() alone left the
 * socket to a caller that reads nothing: Node ends it only once what is queued is written.)
 */
function closeAbusive(session: ServerHttp2Session): void {
  if (session.destroyed) return;
  const lifetime = (session.socket as WithLifetime)[kLifetime];
  session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  session.close();
  setTimeout(cutSession, ABUSIVE_SESSION_GRACE_MS, session, lifetime).unref();
}

const ABUSIVE_SESSION_GRACE_MS = 1_000;

function cutSession(session: ServerHttp2Session, lifetime: ConnectionLifetime | undefined): void {
  if (lifetime !== undefined) lifetime.cut();
  else if (!session.destroyed) session.destroy();
}

/** http2.codec node: a caller's session, before its first stream (request-dispatch.ts: onStream). */
export function onSession(inbound: InboundListener, session: ServerHttp2Session): void {
  // the proxy session.socket reaches the TLS socket's properties; read the caller once
  (session as WithCaller)[kCaller] = (session.socket as WithCaller)[kCaller];
  session.on('error', (err) => onSessionError(inbound, session, err));
  attachGuard(session, new ResetGuard(inbound.maxResetsPer10s, (_guard, resets, completed, reason) => onRapidReset(inbound, session, resets, completed, reason)));
  session.on('stream', countStreamEndedUnheard);
  // PINGs are no answer moving: left out of the delivery read from the bytes written
  countPingAcks(session);
  const lifetime = (session.socket as WithLifetime)[kLifetime];
  lifetime?.limitSession(session, inbound.maxSessionAgeMs);
  // a session nghttp2 ended with a GOAWAY alone is otherwise held until its maximum age
  probeSilentSession(session, inbound.sessionProbe, inbound.logger, () => (lifetime ? lifetime.cut() : session.destroy()));
  inbound.tracker.addSession(session);
}

/**
 * http2.codec node: a session error. One nghttp2 raised for the caller's flood or protocol
 * violation (node-session-faults.ts) is counted and warned about as the meshcar codec's are
 * (the same warn line, one per caller and window); the rest stay at debug.
 */
function onSessionError(inbound: InboundListener, session: ServerHttp2Session, err: Error): void {
  const reason = nodeSessionFault(err);
  if (reason === undefined) {
    inbound.logger.debug({ err: err.message }, 'inbound HTTP/2 session error');
    return;
  }
  const peer = (session as WithCaller)[kCaller]?.id.uri ?? 'unknown';
  // counted every time; logged once per caller identity and window (the meshcar codec's line)
  const through = inbound.abuseCloses.take(peer);
  if (through) {
    inbound.logger.warn(
      { peer, remote: session.socket?.remoteAddress, reason, err: err.message, ...leftOutFields(through) },
      `inbound HTTP/2 session closed: the caller broke the protocol or its limits${leftOut(through, `sessions of ${peer} closed`)}`,
    );
  }
  inbound.observer.sessionRejected?.('inbound', reason);
}

/** http2.codec meshcar: the caller's h2 connection on meshcar's own codec (the node codec's onSession + onStream). */
export function onMeshcarConnection(inbound: InboundListener, socket: TLSSocket, caller: Caller): void {
  const observer = h2SessionObserver('inbound', inbound.observer, inbound.logger, caller.id.uri, socket.remoteAddress, inbound.abuseCloses);
  // one budget for all the caller identity's connections: more connections, no more memory
  const receiveBudget = inbound.receiveBudgets.take(caller.id.uri);
  const conn = new H2Connection(socket, { role: 'server', limits: inbound.h2Limits, sensitiveHeaders: SENSITIVE_HEADERS, observer, headersTooLargeAnswer: inbound.headersTooLargeAnswer, receiveBudget });
  conn.once('close', () => inbound.receiveBudgets.release(caller.id.uri));
  (conn as WithCaller)[kCaller] = caller;
  conn.on('error', (err: Error) => inbound.logger.debug({ err: err.message }, 'inbound HTTP/2 session error'));
  conn.on('stream', (stream: H2Stream, headers: IncomingHeaders, endStream: boolean) => {
    // no ResetGuard: the codec counts resets itself (see src/http/h2-session-observer.ts)
    handle(inbound, new Http2Exchange(stream, headers as IncomingHttpHeaders, !endStream, caller, inbound, undefined), inbound.app);
  });
  (socket as WithLifetime)[kLifetime]?.limitSession(conn, inbound.maxSessionAgeMs);
  inbound.tracker.addSession(conn);
}

/**
 * The trust bundle lost a root: the connections of callers who chain only to it are cut, as at
 * their certificate's expiry (caller-trust.ts), and said in one warn line.
 */
export function cutCallersOutsideTrust(inbound: InboundListener, roots: readonly X509Certificate[], ownChainPem: string): void {
  const peers = cutUntrustedCallers(inbound.tracker.openSockets(), roots, ownChainPem, (socket) => {
    const lifetime = (socket as WithLifetime)[kLifetime];
    if (lifetime !== undefined) lifetime.cut();
    else socket.destroy();
    return (socket as WithCaller)[kCaller]?.id.uri ?? String(socket.remoteAddress);
  });
  if (peers.length === 0) return;
  const callers = [...new Set(peers)];
  inbound.logger.warn(
    { connections: peers.length, peers: callers.slice(0, 10), ...(callers.length > 10 ? { peersLeftOut: callers.length - 10 } : {}) },
    `${peers.length} inbound connection${peers.length === 1 ? '' : 's'} closed, with any requests in flight on them: the caller's certificate chains only to a root the trust bundle no longer holds`,
  );
}

/** The connection's one timer: closed when the caller's certificate path expires; HTTP/2 also retired at its maximum age. */
export function lifetimeOf(inbound: InboundListener, socket: TLSSocket, caller: Caller, expiresAtMs: number): ConnectionLifetime {
  return new ConnectionLifetime(socket, expiresAtMs, {
    onExpired: () =>
      inbound.logger.info({ peer: caller.id.uri, remote: socket.remoteAddress, notAfter: new Date(expiresAtMs).toISOString() }, "inbound connection closed: the caller's certificate expired"),
    onRetired: () => inbound.logger.debug({ peer: caller.id.uri, remote: socket.remoteAddress, maxSessionAgeMs: inbound.maxSessionAgeMs }, 'inbound HTTP/2 session reached its maximum age: GOAWAY'),
  });
}

const RESET_ABUSE_WORDS: Readonly<Record<ResetAbuse, string>> = {
  rapid_reset: 'the caller resets streams faster than allowed (rapid reset)',
  made_you_reset: 'the caller makes the sidecar reset its streams (protocol errors) faster than allowed (MadeYouReset)',
};

/**
 * The caller keeps resetting the streams it opens (CVE-2023-44487), or making nghttp2 reset
 * them (CVE-2025-8671): GOAWAY ENHANCE_YOUR_CALM, then close.
 */
function onRapidReset(inbound: InboundListener, session: ServerHttp2Session, resets: number, completed: number, reason: ResetAbuse): void {
  // streams aborted because the session is going anyway (connection lost, drain) are no abuse
  if (session.destroyed || session.closed) return;
  const caller = (session as WithCaller)[kCaller];
  // one warn line per caller identity and window: a caller doing it on connection after connection is counted, not logged each time
  const through = inbound.abuseCloses.take(caller?.id.uri ?? 'unknown');
  if (through) {
    inbound.logger.warn(
      { peer: caller?.id.uri, remote: session.socket?.remoteAddress, reason, resets, completed, windowSeconds: 10, ...leftOutFields(through) },
      `inbound HTTP/2 session closed: ${RESET_ABUSE_WORDS[reason]}${leftOut(through, 'sessions of the caller closed')}`,
    );
  }
  inbound.observer.sessionRejected?.('inbound', reason);
  // out of nghttp2's receive callback, which this runs inside
  setImmediate(closeAbusive, session);
}

// Node, OpenSSL and http2-wrapper errors, turned into the stable codes the app sees.
// Two phases, because the remedy differs: before a stream exists nothing of the request has
// left (the endpoint is unreachable or is not who it must be: safe to try another endpoint);
// after, the exchange was cut (a reset: never retried, the request may have had effects).

import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import type { TlsFailureReason } from '../metrics/traffic.js';
import { classifyTlsErrorCode, classifyVerdict } from '../tls-failures/codes.js';
import { localShortage } from '../local-shortage.js';

/** Chain or identity failures: the server could not prove it is the upstream we expect. */
const IDENTITY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export interface ConnectFailure {
  readonly error: MeshcarError;
  /** Set when the TLS handshake itself failed, for meshcar_tls_handshake_failures_total. */
  readonly tlsReason: TlsFailureReason | undefined;
  /** This host ran short (local-shortage.ts), not the endpoint: not held against it. */
  readonly local?: boolean;
}

const NOT_TLS = "it does not speak TLS: what answered is not a TLS server (a plain HTTP port, such as the app's own?); the upstream's endpoints must name meshcar inbound listeners";
/**
 * What answered is no meshcar inbound listener, in words, by OpenSSL's code: the first bytes back
 * were no TLS record (a plain-text server), or a TLS server with no h2 to offer (the CA's port,
 * an HTTPS/1.1 server). OpenSSL's own line names its source files.
 */
const NOT_A_SIDECAR: Readonly<Record<string, string>> = {
  ERR_SSL_WRONG_VERSION_NUMBER: NOT_TLS,
  ERR_SSL_PACKET_LENGTH_TOO_LONG: NOT_TLS,
  ERR_SSL_HTTP_REQUEST: NOT_TLS,
  ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL: "a TLS server that does not speak HTTP/2 (no ALPN h2: a CA's port, an HTTPS/1.1 server?); the upstream's endpoints must name meshcar inbound listeners",
};

/** OpenSSL's `807C...:error:0A00010B:SSL routines:...:../deps/openssl/...c:350:\n` as its one line, without the trailing newline. */
function openSslLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function codeOf(err: unknown): string {
  return String((err as { code?: unknown } | null)?.code ?? '');
}

/**
 * The peer closed a connection whose TLS handshake had succeeded before sending its HTTP/2
 * SETTINGS. With TLS 1.3 a server checks the client's certificate after the client's side of
 * the handshake is done, so this is how a callee refusing our certificate looks from here:
 * its alert is not reported to us, the connection just ends. A callee that stops while our
 * handshake is under way looks the same (its process or its drain ends the connection), so the
 * message names both (a review saw a drain blamed on our certificate). http2-wrapper (the node
 * codec) names it HTTP2WRAPPER_NOSETTINGS; the meshcar codec's pool marks its error
 * (h2-session-pool.ts).
 */
function closedBeforeSettings(err: unknown): boolean {
  return codeOf(err) === 'HTTP2WRAPPER_NOSETTINGS' || (err as { closedBeforeSettings?: unknown } | null)?.closedBeforeSettings === true;
}

/** A failure to get a stream: no byte of the request reached the upstream. */
export function classifyConnectError(err: unknown, endpoint: string): ConnectFailure {
  if (isMeshcarError(err)) {
    // verifyServerSpiffeId and the ALPN check name their handshake failure (tlsReason)
    const named = (err as { tlsReason?: TlsFailureReason }).tlsReason;
    if (err.code !== 'upstream_identity_mismatch') return { error: err, tlsReason: named };
    // verifyServerSpiffeId knows no endpoint: the answer names the one that is wrong (of several, maybe)
    const error = err.message.startsWith(endpoint) ? err : new MeshcarError(err.code, `${endpoint}: ${err.message}`, { cause: err });
    return { error, tlsReason: named ?? 'bad_identity' };
  }
  const code = codeOf(err);
  // a certificate whose own extensions or whose issuer's constraints forbid it here (no
  // serverAuth, an unknown critical extension, an issuer that is no CA): a chain verdict like
  // an untrusted one, never "could not reach" (Node names some UNSPECIFIED, with OpenSSL's text)
  const forbidden = classifyVerdict(err) === 'invalid_certificate';
  if (IDENTITY_CODES.has(code) || forbidden) {
    const tlsReason: TlsFailureReason = forbidden ? 'invalid_certificate' : (classifyTlsErrorCode(code) ?? 'unknown_ca');
    return {
      error: new MeshcarError('upstream_identity_mismatch', `${endpoint} presented a certificate we cannot trust: ${describeError(err)}`, { cause: err }),
      tlsReason,
    };
  }
  const shortage = localShortage(code);
  if (shortage !== undefined) {
    return {
      error: new MeshcarError('upstream_unavailable', `could not connect to ${endpoint}: ${shortage} (${code}); the endpoint is not at fault`, { cause: err }),
      tlsReason: undefined,
      local: true,
    };
  }
  if (closedBeforeSettings(err)) {
    return {
      error: new MeshcarError('upstream_unavailable', `${endpoint} closed the connection right after the TLS handshake: most likely it refused our certificate (its /debug/tls names the reason), or it was stopping at that moment (a drain or a restart ends connections whose handshake was under way)`, { cause: err }),
      tlsReason: undefined,
    };
  }
  // a handshake that timed out names itself (mutual-tls.ts): its code is ETIMEDOUT, as a TCP
  // connect's. A chain verdict (the wrong extended key usage, a leaf as issuer...) is read with
  // its OpenSSL text: Node calls several of them UNSPECIFIED.
  const tlsReason: TlsFailureReason | undefined = (err as { tlsReason?: TlsFailureReason } | null)?.tlsReason ?? classifyVerdict(err);
  return {
    error: new MeshcarError('upstream_unavailable', `could not reach ${endpoint}: ${NOT_A_SIDECAR[code] ?? openSslLine(describeError(err))}`, { cause: err }),
    tlsReason,
  };
}

/**
 * session.request() (core http2, or src/h2: ERR_H2_INVALID_HEADER, ERR_H2_HEADER_LIST_TOO_LARGE)
 * refused a header the app sent: the app's fault, nothing was sent, the session lives on.
 */
export function isBadRequestError(err: unknown): boolean {
  const code = codeOf(err);
  return isHeaderListTooLargeError(err) || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_INVALID_CHAR' || code.startsWith('ERR_HTTP2_INVALID_HEADER') || code === 'ERR_HTTP2_HEADER_SINGLE_VALUE' || code === 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' || code === 'ERR_HTTP2_INVALID_PSEUDOHEADER' || code === 'ERR_H2_INVALID_HEADER';
}

/** src/h2 refused a request head over the upstream's SETTINGS_MAX_HEADER_LIST_SIZE (never sent): 431 to the app. */
export function isHeaderListTooLargeError(err: unknown): boolean {
  return codeOf(err) === 'ERR_H2_HEADER_LIST_TOO_LARGE';
}

/** The session was closing under us (GOAWAY raced the pick; src/h2: ERR_H2_SESSION_CLOSING): nothing was sent, try again. */
export function isSessionClosingError(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_H2_SESSION_CLOSING' || /gracefully closing/.test(describeError(err));
}

/**
 * A stream the upstream refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream id:
 * RFC 9113 §8.7) that is not sent again (its upload still coming or over bufferLimit, or refused
 * on every try): 503, as the inbound answers an h2c app's refusal; upstream_reset would tell
 * the app that the upstream may have acted on it.
 */
export function refusedUnprocessed(endpoint: string, refusedStream: boolean): MeshcarError {
  const how = refusedStream ? 'REFUSED_STREAM' : 'above the last stream id of its GOAWAY';
  return new MeshcarError('upstream_unavailable', `${endpoint} refused the request (${how}): it was not processed, and may be sent again`);
}

/** Why a request cut with its session was not sent again (upstreamSilent). */
export type NotSentAgain = 'answer_begun' | 'not_safe' | 'no_retry_left';

const NOT_SENT_AGAIN: Readonly<Record<NotSentAgain, string>> = {
  answer_begun: 'its answer had begun, so it was not sent again',
  not_safe: 'the request may have reached the upstream and is not safe to repeat, so it was not sent again',
  no_retry_left: 'it was not sent again: no retry was left (retry budget, attempts or time)',
};

/**
 * A request cut with its session, which our keepalive destroyed as it went silent (`why`: what
 * it missed), and not sent again (`because`). The code stays upstream_reset; the old words said
 * the upstream had reset it, which it never did.
 */
export function upstreamSilent(endpoint: string, why: string, because: NotSentAgain): MeshcarError {
  return new MeshcarError('upstream_reset', `the session to ${endpoint} was closed under the request: it ${why} (the path or the peer is dead); ${NOT_SENT_AGAIN[because]}`);
}

/**
 * A WebSocket (Upgrade) request's own connection to the far sidecar ended before any answer
 * (closed or reset, no byte of an answer): no stream was reset. A meshcar there does so when it
 * refused our certificate, or when this caller is past its per-caller connection cap (each
 * tunnel holds a connection of its own); a plain request's session says the first alike.
 */
export function upgradeUnanswered(endpoint: string, detail: string): MeshcarError {
  return new MeshcarError('upstream_reset', `${endpoint} closed the tunnel's connection before answering the upgrade (${detail}): a meshcar there does so when it refused our certificate (its /debug/tls names the reason) or when this caller is past its inbound.limits.maxConnectionsPerCaller (each WebSocket tunnel holds a connection; its warn line 'inbound connection refused' says so)`);
}

/** The far side answered the upgrade with bytes node:http could not read as an HTTP/1.1 answer. */
export function upgradeAnswerUnreadable(endpoint: string, detail: string): MeshcarError {
  return new MeshcarError('bad_gateway', `${endpoint} answered the upgrade with no HTTP/1.1 answer meshcar could read: ${detail}`);
}

export function upstreamReset(endpoint: string, detail: string): MeshcarError {
  return new MeshcarError('upstream_reset', `${endpoint} reset the stream: ${detail}`);
}

/** `limit`: what ran out (a config key, or the app's own deadline), so the message says what to raise. */
export function upstreamTimeout(upstream: string, timeoutMs: number, what = 'did not answer', limit?: string): MeshcarError {
  return new MeshcarError('upstream_timeout', `${upstream} ${what} within ${timeoutMs} ms${limit === undefined ? '' : ` (${limit})`}`);
}

/** The app's own deadline (grpc-timeout, x-request-timeout) ran out, not the upstream's timeout. */
export const APP_DEADLINE = "the app's own deadline: its grpc-timeout or x-request-timeout";

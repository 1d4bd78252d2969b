// What the data plane reports about traffic, as a narrow interface: inbound and outbound
// call it, the metrics layer (and the access log) implement it. Passed in, never global.

export type Direction = 'inbound' | 'outbound';

/** One finished request, as the sidecar saw it. */
export interface RequestRecord {
  readonly direction: Direction;
  /** Inbound: the caller's service name (or SPIFFE ID); outbound: the upstream's name. */
  readonly peer: string;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly status: number;
  readonly durationSeconds: number;
  /** Set when meshcar itself answered or the exchange failed (an ErrorCode, or reset/timeout). */
  readonly errorCode?: string;
  readonly requestId?: string;
  /** Outbound: the endpoint (host:port) that served it. */
  readonly endpoint?: string;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  /** Set when the request was held against an OpenAPI spec (src/schema). */
  readonly schema?: SchemaResult;
  /**
   * gRPC requests only (src/http/grpc-status.ts): the grpc-status the caller was given, or null
   * when its answer carried none (cut, reset); undefined for any other request.
   */
  readonly grpcStatus?: number | null | undefined;
  /** Outbound: the retries made (the endpoint is the last attempt's); undefined when there was none. */
  readonly retries?: number | undefined;
}

/**
 * A request the HTTP/1.1 parser refused (not HTTP/1.1, a head over the limit or too slow: 400,
 * 431, 408): answered by the sidecar and never forwarded, with no method or path to tell.
 */
export interface RefusedRequest {
  readonly direction: Direction;
  /** Inbound: the caller's peer label; outbound: 'unknown' (no Host was read). */
  readonly peer: string;
  readonly status: number;
  readonly errorCode: string;
  /** The JSON error body's bytes. */
  readonly bytesOut: number;
  /** The request's method and id, when its head was read (a CONNECT); undefined: the parser refused it. */
  readonly method?: string;
  readonly requestId?: string;
}

/** What the OpenAPI check of one request found. */
export interface SchemaResult {
  /** The spec's path template of the matched operation; undefined: undocumented. */
  readonly route: string | undefined;
  /** The first violation: kind (the metric label) and `location: rule`. */
  readonly violation: { readonly kind: string; readonly message: string } | undefined;
}

/**
 * Why a TLS handshake failed (the `reason` label; src/tls-failures/ says each in words):
 * no_client_cert, unknown_ca (chain not to our bundle), expired, not_yet_valid, bad_identity
 * (SPIFFE ID missing, several, or of another trust domain), identity_mismatch (a valid ID, but not
 * the expected one), protocol (not TLS, no common TLS version or ALPN protocol), handshake_timeout
 * (no handshake within the inbound's handshake timeout, 10 s), invalid_certificate (a certificate
 * its extensions or an issuer's constraints forbid for this use: extended key usage, path
 * length, name constraints, an issuer that is no CA), other.
 */
export type TlsFailureReason = 'no_client_cert' | 'unknown_ca' | 'expired' | 'not_yet_valid' | 'bad_identity' | 'identity_mismatch' | 'protocol' | 'handshake_timeout' | 'invalid_certificate' | 'other';

/** Every TlsFailureReason (a Record, so a reason added to the type and not here fails to compile). */
const EVERY_TLS_FAILURE_REASON: Record<TlsFailureReason, true> = { no_client_cert: true, unknown_ca: true, expired: true, not_yet_valid: true, bad_identity: true, identity_mismatch: true, protocol: true, handshake_timeout: true, invalid_certificate: true, other: true };
export const TLS_FAILURE_REASONS = Object.keys(EVERY_TLS_FAILURE_REASON) as readonly TlsFailureReason[];

/** One failed handshake in words, for the log line and GET /debug/tls. */
export interface TlsFailureDetail {
  /** The other end: host:port. */
  readonly peer: string;
  /** The reason in words a service owner acts on (who, which CA, which date, which ID). */
  readonly message: string;
}

export interface TrafficObserver {
  requestFinished(record: RequestRecord): void;
  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail): void;
  /** +1 when an HTTP/2 session to an upstream opens, -1 when it closes. */
  upstreamSessionsChanged(upstream: string, delta: number): void;
  upstreamStreamsChanged(upstream: string, delta: number): void;
  /** Outbound: one retry finished; reason connect_failure|reset|status_503|status_429, outcome success|failure|cancelled. */
  retryAttempted?(upstream: string, reason: string, outcome: string): void;
  /** Outbound: a retry was wanted, but the upstream's retry budget was spent. */
  retryBudgetExhausted?(upstream: string): void;
  /** Inbound, h2c app: a request that found the app's sessions at their stream limit; result granted|gave_up (its deadline, or the caller left)|queue_full|failed (the app unreachable). */
  appStreamWaited?(result: string): void;
  /** Inbound, h2c app: the app refused a stream (REFUSED_STREAM); result replayed|answered (503: refused too often, or too much body sent to replay). */
  appStreamRefused?(result: string): void;
  /** Outbound: an endpoint of the upstream was ejected after consecutive failures. */
  outlierEjected?(upstream: string): void;
  /** Outbound: endpoints of the upstream ejected now (after every ejection and re-admission). */
  ejectedEndpointsChanged?(upstream: string, ejected: number): void;
  /**
   * Outbound: the addresses known for the upstream now (IPs as written, and what its names last
   * resolved to), told when they change (at a lookup or a reload), never per request.
   */
  upstreamEndpointsChanged?(upstream: string, endpoints: number): void;
  /** Outbound: a lookup of one of the upstream's host names failed (its last addresses stay in use). */
  upstreamLookupFailed?(upstream: string): void;
  /** Outbound: a reload removed the upstream; its address gauge goes (counters stay, as every per-upstream one). */
  upstreamRemoved?(upstream: string): void;
  /** Outbound: a removed upstream's last session and stream have closed (a retired pool's): its session and stream gauges go. */
  upstreamUnused?(upstream: string): void;
  /** Outbound: a request refused with 503 circuit_open (circuit breaker limits reached). */
  circuitOpened?(upstream: string): void;
  /** Inbound: an HTTP/2 session the sidecar closed for abuse (GOAWAY ENHANCE_YOUR_CALM). */
  sessionRejected?(direction: Direction, reason: SessionRejectReason): void;
  /** Inbound: a connection closed over a cap (src/inbound/connection-caps.ts; pipelined requests: request-dispatch.ts). */
  inboundConnectionRefused?(reason: InboundConnectionRefusal): void;
  /** A request the HTTP/1.1 parser refused, answered (the access log writes it; no request metric counts it). */
  requestRefused?(refused: RefusedRequest): void;
  /** Inbound, http2.codec meshcar: a stream the codec reset (RST_STREAM) because the peer broke a stream rule. */
  streamError?(direction: Direction, reason: Http2StreamErrorReason): void;
}

/**
 * Why the inbound closed a caller's connection: as it came, handshakes in progress from its
 * address or its caller's open connections at their cap; the oldest handshake in progress, when
 * the listener had its maximum of them; later, more HTTP/1.1 requests pipelined
 * on it than answered.
 */
export type InboundConnectionRefusal = 'handshake_limit' | 'handshake_total_limit' | 'caller_limit' | 'chain_refused' | 'pipelined';
const EVERY_INBOUND_CONNECTION_REFUSAL: Record<InboundConnectionRefusal, true> = { handshake_limit: true, handshake_total_limit: true, caller_limit: true, chain_refused: true, pipelined: true };
export const INBOUND_CONNECTION_REFUSALS = Object.keys(EVERY_INBOUND_CONNECTION_REFUSAL) as readonly InboundConnectionRefusal[];

/**
 * Why the sidecar closed an HTTP/2 session: rapid_reset (CVE-2023-44487 pattern); with
 * http2.codec meshcar also the codec's own reasons for a peer's abuse or protocol violation
 * (src/h2/errors.ts names them; the label values are never renamed); with http2.codec node on
 * the inbound, those nghttp2's errors map to (src/inbound/node-session-faults.ts).
 */
export type SessionRejectReason =
  | 'rapid_reset'
  | 'made_you_reset'
  | 'continuation_flood'
  | 'settings_flood'
  | 'ping_flood'
  | 'window_update_flood'
  | 'priority_flood'
  | 'empty_data_flood'
  | 'goaway_flood'
  | 'outbound_flood'
  | 'settings_timeout'
  | 'bad_preface'
  | 'protocol_error'
  | 'frame_size_error'
  | 'flow_control_error'
  | 'compression_error'
  | 'header_list_too_large'
  | 'stream_id_error'
  | 'stream_closed'
  | 'push_refused';

/**
 * Why the meshcar codec reset one stream because of the peer: the codec's StreamErrorReason
 * (src/h2/errors.ts), a bounded set; the label values are never renamed.
 */
export type Http2StreamErrorReason =
  | 'refused_stream'
  | 'malformed_headers'
  | 'content_length_mismatch'
  | 'flow_control_error'
  | 'stream_closed'
  | 'header_list_too_large'
  | 'priority_self_dependency'
  | 'frame_size_error'
  | 'window_update_zero'
  | 'trailers_without_end_stream'
  | 'buffer_limit';

export const NO_OBSERVER: TrafficObserver = Object.freeze({
  requestFinished() {},
  tlsHandshakeFailed() {},
  upstreamSessionsChanged() {},
  upstreamStreamsChanged() {},
});

// Stable names for why an HTTP/2 connection or stream ended, and the error objects the codec
// hands its users. The reason strings are metric label values
// (meshcar_http2_sessions_closed_total{reason}, the stream-error counter): never rename one.

import { ErrorCode, errorCodeName } from './constants.js';

/** Why a connection closed. */
export type ConnectionCloseReason =
  | 'normal' // both sides done: graceful close or the socket ended cleanly after GOAWAY
  | 'peer_goaway' // the peer sent GOAWAY with an error code
  | 'socket_error' // the transport failed or ended under us
  | 'destroyed' // our user destroyed the connection
  | 'bad_preface'
  | 'protocol_error'
  | 'frame_size_error'
  | 'flow_control_error'
  | 'compression_error'
  | 'header_list_too_large'
  | 'continuation_flood'
  | 'settings_timeout'
  | 'settings_flood'
  | 'ping_flood'
  | 'ping_timeout'
  | 'window_update_flood'
  | 'priority_flood'
  | 'empty_data_flood'
  | 'goaway_flood'
  | 'rapid_reset'
  | 'made_you_reset'
  | 'stream_id_error'
  | 'stream_closed'
  | 'push_refused'
  | 'outbound_flood' // the peer makes us queue answers (PING/SETTINGS ACKs, resets) it never reads
  | 'internal_error';

/** Why we reset a stream (stream errors: the connection lives on). */
export type StreamErrorReason =
  | 'refused_stream' // over the concurrent-stream limit, or after GOAWAY
  | 'malformed_headers' // pseudo-header rules, forbidden or upper-case names, bad characters
  | 'content_length_mismatch'
  | 'flow_control_error'
  | 'stream_closed' // a frame on a half-closed (remote) stream
  | 'header_list_too_large'
  | 'priority_self_dependency'
  | 'frame_size_error'
  | 'window_update_zero'
  | 'trailers_without_end_stream'
  | 'buffer_limit'; // the peers sharing a ReceiveBudget hold all it allows (receive-budget.ts)

/** A connection error: the connection is gone (GOAWAY with `h2Code` was sent or received). */
export class H2ConnectionError extends Error {
  override readonly name = 'H2ConnectionError';
  constructor(
    readonly reason: ConnectionCloseReason,
    readonly h2Code: number,
    message: string,
  ) {
    super(message);
  }
  get codeName(): string {
    return errorCodeName(this.h2Code);
  }
}

/** A stream ended abnormally: reset by either side (`h2Code` the RST_STREAM code) or lost with its connection. */
export class H2StreamError extends Error {
  override readonly name = 'H2StreamError';
  constructor(
    /** 'reset_by_peer', 'reset_locally', 'connection_lost', 'refused' (never processed: safe to retry), or a StreamErrorReason. */
    readonly reason: StreamErrorReason | 'reset_by_peer' | 'reset_locally' | 'connection_lost' | 'refused',
    readonly h2Code: number,
    message: string,
  ) {
    super(message);
  }
  get codeName(): string {
    return errorCodeName(this.h2Code);
  }
}

/** Thrown inside the codec to unwind to the connection's frame loop; never escapes it. */
export class ConnectionFault {
  constructor(
    readonly reason: ConnectionCloseReason,
    readonly h2Code: number,
    readonly message: string,
  ) {}
}

export function protocolFault(message: string, reason: ConnectionCloseReason = 'protocol_error'): ConnectionFault {
  return new ConnectionFault(reason, ErrorCode.PROTOCOL_ERROR, message);
}

/** Thrown by request() once the connection takes no new streams; given to pings the close cut short. */
export class SessionClosingError extends Error {
  readonly code = 'ERR_H2_SESSION_CLOSING';
}

/**
 * Thrown by request() for a head above the peer's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541
 * sizes), before a stream id is taken: sent, the peer would refuse it, often with the whole
 * connection (as Go's client, the request is refused locally; the caller answers 431).
 */
export class HeaderListTooLargeError extends Error {
  readonly code = 'ERR_H2_HEADER_LIST_TOO_LARGE';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`a header list of ${size} bytes is above the peer's limit of ${limit}`);
  }
}

/** Thrown by request() while as many of our streams are open as the peer's SETTINGS_MAX_CONCURRENT_STREAMS allows. */
export class StreamLimitError extends Error {
  readonly code = 'ERR_H2_STREAM_LIMIT';
}

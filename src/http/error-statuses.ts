// Which HTTP status and which gRPC status each meshcar error code stands for, and what a
// received answer's status stands for (a sidecar's own error named in x-meshcar-error, a
// grpc-status read for endpoint health). The answers built from them are written by
// status.ts, which re-exports these for its importers.

import type { ErrorCode } from '../errors.js';

const STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  malformed_json: 400,
  bad_csr: 400,
  weak_key: 400,
  unauthenticated: 401,
  bad_token: 401,
  token_expired: 401,
  token_used: 401,
  bad_svid: 401,
  identity_not_allowed: 403,
  forbidden: 403,
  not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  body_too_large: 413,
  headers_too_large: 431,
  request_timeout: 408,
  expectation_failed: 417,
  client_closed: 499,
  unsupported_transfer_coding: 501,
  unsupported_method: 501,
  unsupported_media_type: 415,
  undocumented_operation: 404,
  schema_violation: 400,
  rate_limited: 429,
  upstream_identity_mismatch: 502,
  upstream_reset: 502,
  bad_gateway: 502,
  upstream_unavailable: 503,
  circuit_open: 503,
  overloaded: 503,
  upstream_timeout: 504,
  usage: 400,
  config_invalid: 400,
  bad_path: 400,
  reload_aborted: 503,
  reload_partial: 500,
  listen_failed: 500,
  ca_exists: 409,
  ca_missing: 500,
  identity_invalid: 500,
  ca_unreachable: 503,
  ca_busy: 503,
  ca_mismatch: 502,
  ca_refused: 502,
  internal: 500,
};

// gRPC status codes (grpc/doc/statuscodes.md) by meaning, not through the HTTP status: a
// sidecar's own timeout is DEADLINE_EXCEEDED (retry policies treat it apart from UNAVAILABLE),
// a refused caller PERMISSION_DENIED, a rate limit RESOURCE_EXHAUSTED.
const CANCELLED = 1;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;
const GRPC_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: INTERNAL,
  malformed_json: INVALID_ARGUMENT,
  bad_csr: INVALID_ARGUMENT,
  weak_key: INVALID_ARGUMENT,
  unauthenticated: UNAUTHENTICATED,
  bad_token: UNAUTHENTICATED,
  token_expired: UNAUTHENTICATED,
  token_used: UNAUTHENTICATED,
  bad_svid: UNAUTHENTICATED,
  identity_not_allowed: PERMISSION_DENIED,
  forbidden: PERMISSION_DENIED,
  not_found: UNIMPLEMENTED,
  no_route: UNIMPLEMENTED,
  method_not_allowed: UNIMPLEMENTED,
  body_too_large: RESOURCE_EXHAUSTED,
  headers_too_large: RESOURCE_EXHAUSTED,
  request_timeout: DEADLINE_EXCEEDED,
  expectation_failed: INVALID_ARGUMENT,
  client_closed: CANCELLED,
  unsupported_transfer_coding: UNIMPLEMENTED,
  unsupported_method: UNIMPLEMENTED,
  unsupported_media_type: INVALID_ARGUMENT,
  undocumented_operation: UNIMPLEMENTED,
  schema_violation: INVALID_ARGUMENT,
  rate_limited: RESOURCE_EXHAUSTED,
  upstream_identity_mismatch: UNAVAILABLE,
  upstream_reset: UNAVAILABLE,
  bad_gateway: UNAVAILABLE,
  upstream_unavailable: UNAVAILABLE,
  circuit_open: UNAVAILABLE,
  overloaded: UNAVAILABLE,
  upstream_timeout: DEADLINE_EXCEEDED,
  usage: INVALID_ARGUMENT,
  config_invalid: INVALID_ARGUMENT,
  bad_path: INVALID_ARGUMENT,
  reload_aborted: UNAVAILABLE,
  reload_partial: INTERNAL,
  listen_failed: INTERNAL,
  ca_exists: INTERNAL,
  ca_missing: INTERNAL,
  identity_invalid: UNAVAILABLE,
  ca_unreachable: UNAVAILABLE,
  ca_busy: UNAVAILABLE,
  ca_mismatch: UNAVAILABLE,
  ca_refused: UNAVAILABLE,
  internal: INTERNAL,
};

/** 499, as nginx and Envoy record it: the caller closed the request before an answer was sent. */
export const CLIENT_CLOSED_STATUS = 499;

export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}

export function grpcStatusFor(code: ErrorCode): number {
  return GRPC_STATUS[code];
}

/**
 * What a gRPC status says about the server that sent it, as an HTTP status for endpoint health
 * (Envoy's outlier detection maps them the same way): UNAVAILABLE, INTERNAL, UNKNOWN and
 * DATA_LOSS, or no status at all, are the server failing (5xx); RESOURCE_EXHAUSTED is it
 * shedding load (429). The
 * rest, DEADLINE_EXCEEDED included (the caller's own deadline, passed on), are the call's
 * outcome, not the server's health: 200.
 */
export function grpcHealthStatus(grpcStatus: unknown): number {
  switch (grpcStatus) {
    case undefined: // trailers without a status: the call has none (its client sees INTERNAL)
      return 500;
    case '14':
      return 503;
    case '13':
    case '2':
    case '15':
      return 500;
    case '8':
      return 429;
    default:
      return 200;
  }
}

/**
 * The status an answer stands for. A sidecar's own error (`x-meshcar-error` with a known code)
 * counts as its HTTP status even when a gRPC caller got it as 200 and grpc-status: the
 * outbound's retries, load balancing and outlier ejection, and every sidecar's metrics, judge
 * it as the failure it is.
 */
export function effectiveStatus(status: number, head: Readonly<Record<string, unknown>>): number {
  const code = head['x-meshcar-error'];
  return isErrorCode(code) ? STATUS[code] : status;
}

/** One of meshcar's error codes (own keys only: `constructor` is not a code). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS, code);
}

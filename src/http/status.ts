// The single mapping from meshcar error codes to HTTP statuses and JSON error bodies, and to
// gRPC statuses: a gRPC caller gets every error as a trailers-only answer (HTTP 200,
// grpc-status, grpc-message), as linkerd2-proxy and Envoy answer it, because gRPC clients read
// a non-200 status only as "the transport failed" (a 504 becomes UNAVAILABLE, not
// DEADLINE_EXCEEDED) and drop the JSON body unread.

import { STATUS_CODES, type ServerResponse } from 'node:http';
import { constants as h2, type Http2ServerResponse } from 'node:http2';
import type { H2ServerStream } from './h2-server-stream.js';
import { MeshcarError, type ErrorCode } from '../errors.js';

const STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  malformed_json: 400,
  bad_csr: 400,
  weak_key: 400,
  unauthenticated: 401,
  bad_token: 401,
  token_expired: 401,
  token_used: 401,
  bad_client_certificate: 401,
  identity_not_allowed: 403,
  forbidden: 403,
  not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  body_too_large: 413,
  headers_too_large: 431,
  request_timeout: 408,
  expectation_failed: 417,
  unsupported_transfer_coding: 501,
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
  ca_mismatch: 502,
  ca_refused: 502,
  internal: 500,
};

// gRPC status codes (grpc/doc/statuscodes.md) by meaning, not through the HTTP status: a
// sidecar's own timeout is DEADLINE_EXCEEDED (retry policies treat it apart from UNAVAILABLE),
// a refused caller PERMISSION_DENIED, a rate limit RESOURCE_EXHAUSTED.
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
  bad_client_certificate: UNAUTHENTICATED,
  identity_not_allowed: PERMISSION_DENIED,
  forbidden: PERMISSION_DENIED,
  not_found: UNIMPLEMENTED,
  no_route: UNIMPLEMENTED,
  method_not_allowed: UNIMPLEMENTED,
  body_too_large: RESOURCE_EXHAUSTED,
  headers_too_large: RESOURCE_EXHAUSTED,
  request_timeout: DEADLINE_EXCEEDED,
  expectation_failed: INVALID_ARGUMENT,
  unsupported_transfer_coding: UNIMPLEMENTED,
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
 * The content type of a trailers-only gRPC error answer when the request is gRPC
 * (`application/grpc`, `application/grpc+proto`, gRPC-Web ...), else undefined.
 */
export function grpcAnswerType(requestContentType: unknown): string | undefined {
  if (typeof requestContentType !== 'string') return undefined;
  // media types are case-insensitive; gRPC clients send lower case, so that is the fast path
  const type = requestContentType.startsWith('application/grpc') ? requestContentType : requestContentType.toLowerCase();
  if (!type.startsWith('application/grpc')) return undefined;
  const next = type.charCodeAt(16);
  // 'application/grpc' exactly, or followed by '+' / ';' / '-web...'; not 'application/grpcfoo'
  if (Number.isNaN(next) || next === 0x2b || next === 0x3b) return 'application/grpc';
  if (type.startsWith('application/grpc-web-text')) return 'application/grpc-web-text';
  return type.startsWith('application/grpc-web') ? 'application/grpc-web' : undefined;
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

/** grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2: "Percent-Encoded"). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Any thrown value as a MeshcarError; unexpected ones become 'internal' with no detail leaked. */
export function asMeshcarError(err: unknown): MeshcarError {
  if (err instanceof MeshcarError) return err;
  return new MeshcarError('internal', 'internal error', { cause: err });
}

export interface ErrorBodyExtras {
  readonly requestId?: string;
  /** The request was gRPC: answer trailers-only with this content type (see grpcAnswerType). */
  readonly grpcType?: string | undefined;
}

/** The JSON body of every error meshcar answers: `{"error","message","requestId"}`. */
export function errorBody(err: MeshcarError, requestId?: string): string {
  return JSON.stringify(requestId === undefined ? { error: err.code, message: err.message } : { error: err.code, message: err.message, requestId });
}

function errorHeaders(err: MeshcarError, body: string, requestId: string | undefined): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-meshcar-error': err.code,
  };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  return headers;
}

/**
 * The JSON error answer as a flat field list (names lower-case, no :status) and its body, made
 * once, for a writer that sends it without a request at hand: our HTTP/2 codec's 431 to a
 * request whose head it did not keep (h2 connection option headersTooLargeAnswer).
 */
export function errorAnswerList(err: MeshcarError): { fields: string[]; body: Buffer } {
  const body = errorBody(err);
  const fields: string[] = [];
  for (const [name, value] of Object.entries(errorHeaders(err, body, undefined))) fields.push(name, String(value));
  return { fields, body: Buffer.from(body) };
}

/** A trailers-only gRPC answer: the status and message ride in the one header block, no body. */
function grpcErrorHeaders(err: MeshcarError, grpcType: string, requestId: string | undefined): Record<string, string | number> {
  const headers: Record<string, string | number> = { 'content-type': grpcType, ...grpcErrorTrailers(err) };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  return headers;
}

/**
 * The trailers that end a gRPC answer the sidecar cut after its head (the upstream broke off
 * or went quiet): the status the error stands for (UNAVAILABLE, DEADLINE_EXCEEDED), its
 * message and x-meshcar-error, where a gRPC client reads them, rather than a bare reset.
 */
export function grpcErrorTrailers(err: MeshcarError): Record<string, string | number> {
  return { 'grpc-status': GRPC_STATUS[err.code], 'grpc-message': grpcMessage(err.message), 'x-meshcar-error': err.code };
}

/** Writes the JSON error answer; once the response has started, cutting it is the only signal left. */
export function sendError(res: ServerResponse | Http2ServerResponse, err: MeshcarError, extras: ErrorBodyExtras = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (extras.grpcType !== undefined) {
    const headers = grpcErrorHeaders(err, extras.grpcType, extras.requestId);
    headers['content-length'] = 0;
    (res as ServerResponse).writeHead(200, headers);
    res.end();
    return;
  }
  const body = errorBody(err, extras.requestId);
  (res as ServerResponse).writeHead(statusFor(err.code), errorHeaders(err, body, extras.requestId));
  res.end(body);
}

const END_STREAM = { endStream: true } as const;

/**
 * The same answer on an HTTP/2 stream (core API); a reset once the response has started.
 * A stream that can take no answer any more (the caller reset it or went away, on either
 * codec) is expected and left alone. Anything else that throws is a fault of ours (a header the
 * answer cannot carry): the error answer is the last thing a request's handling does, so it
 * never throws out of it (that would end the process); the stream is reset (INTERNAL_ERROR)
 * and the error returned for the caller to log. Undefined otherwise.
 */
export function sendStreamError(stream: H2ServerStream, err: MeshcarError, requestId?: string, grpcType?: string): unknown {
  // meshcar's codec marks a received reset at once (localClosed), before 'close' sets closed
  if (stream.destroyed || stream.closed || stream.localClosed === true) return undefined;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return undefined;
  }
  try {
    if (grpcType !== undefined) {
      stream.respond({ ':status': 200, ...grpcErrorHeaders(err, grpcType, requestId) }, END_STREAM);
      return undefined;
    }
    const body = errorBody(err, requestId);
    stream.respond({ ':status': statusFor(err.code), ...errorHeaders(err, body, requestId) });
    // the answer to a HEAD: both codecs' respond() ended the stream with the head, and a body
    // written now would be an 'error' (write after end) on a stream nobody may be listening to
    if (!stream.writableEnded) stream.end(body);
    return undefined;
  } catch (fault) {
    if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return fault;
  }
}

/**
 * A whole HTTP/1.1 error response as text, for a raw socket (an Upgrade request, or a request
 * the parser refused) that no ServerResponse wraps; it closes the connection.
 */
export function rawErrorResponse(err: MeshcarError | { status: number }, requestId?: string): string {
  const status = 'status' in err ? err.status : statusFor(err.code);
  const body = 'status' in err ? '' : errorBody(err, requestId);
  const headers = 'status' in err ? { 'content-length': 0, 'cache-control': 'no-store' } : errorHeaders(err, body, requestId);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}connection: close\r\n\r\n${body}`;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

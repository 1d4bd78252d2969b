// The single mapping from meshcar error codes to HTTP statuses and JSON error bodies.

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
  unsupported_media_type: 415,
  undocumented_operation: 404,
  schema_violation: 400,
  rate_limited: 429,
  upstream_identity_mismatch: 502,
  upstream_reset: 502,
  bad_gateway: 502,
  upstream_unavailable: 503,
  circuit_open: 503,
  upstream_timeout: 504,
  usage: 400,
  config_invalid: 400,
  ca_exists: 409,
  ca_missing: 500,
  identity_invalid: 500,
  ca_unreachable: 503,
  ca_mismatch: 502,
  ca_refused: 502,
  internal: 500,
};

export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}

/** Any thrown value as a MeshcarError; unexpected ones become 'internal' with no detail leaked. */
export function asMeshcarError(err: unknown): MeshcarError {
  if (err instanceof MeshcarError) return err;
  return new MeshcarError('internal', 'internal error', { cause: err });
}

export interface ErrorBodyExtras {
  readonly requestId?: string;
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

/** Writes the JSON error answer; once the response has started, cutting it is the only signal left. */
export function sendError(res: ServerResponse | Http2ServerResponse, err: MeshcarError, extras: ErrorBodyExtras = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err, extras.requestId);
  (res as ServerResponse).writeHead(statusFor(err.code), errorHeaders(err, body, extras.requestId));
  res.end(body);
}

/** The same answer on an HTTP/2 stream (core API); a reset once the response has started. */
export function sendStreamError(stream: H2ServerStream, err: MeshcarError, requestId?: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = errorBody(err, requestId);
  stream.respond({ ':status': statusFor(err.code), ...errorHeaders(err, body, requestId) });
  stream.end(body);
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

// The single mapping from meshcar error codes to HTTP statuses and JSON error bodies.

import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
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

/** Writes the JSON error body, unless the response has already started. */
export function sendError(res: ServerResponse | Http2ServerResponse, err: MeshcarError, extras: ErrorBodyExtras = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: err.code, message: err.message, ...(extras.requestId ? { requestId: extras.requestId } : {}) });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  (res as ServerResponse).writeHead(statusFor(err.code), headers);
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

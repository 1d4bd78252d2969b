// Every error meshcar raises on purpose: one class, a stable machine-readable code, and a
// message written for the person who has to mend it. Only src/http/ maps codes to statuses.

export type ErrorCode =
  // request shape (400)
  | 'bad_request'
  | 'malformed_json'
  | 'bad_csr'
  | 'weak_key'
  // credentials (401) and permission (403)
  | 'unauthenticated'
  | 'bad_token'
  | 'token_expired'
  | 'token_used'
  | 'bad_svid'
  | 'identity_not_allowed'
  | 'forbidden'
  // transport limits
  | 'not_found'
  | 'method_not_allowed'
  | 'body_too_large'
  | 'headers_too_large'
  | 'request_timeout'
  | 'expectation_failed'
  // the client closed the connection before its request was whole (a body read to its end by
  // meshcar itself, the CA's sign request): no answer can be sent, and no fault of the server's
  | 'client_closed'
  | 'unsupported_transfer_coding'
  | 'unsupported_method'
  | 'rate_limited'
  // the CA's folder is held by another meshcar process past a spend's wait: retry shortly
  | 'ca_busy'
  // sidecar data plane
  | 'no_route'
  | 'upstream_identity_mismatch'
  | 'upstream_reset'
  | 'bad_gateway'
  | 'upstream_unavailable'
  | 'circuit_open'
  // the sidecar's own bounded resources are full (the OpenAPI check's buffered bodies)
  | 'overloaded'
  | 'upstream_timeout'
  // OpenAPI schema checks in enforce mode (src/schema), either side
  | 'undocumented_operation'
  | 'schema_violation'
  | 'unsupported_media_type'
  // local, non-HTTP failures
  | 'usage'
  | 'config_invalid'
  // a path given on the command line that cannot be used (missing, a file for a folder, no permission)
  | 'bad_path'
  // workers > 1: a reload no worker applied (one refused it or did not answer in time), or one
  // the workers applied but not every one confirmed (that one is restarted on it)
  | 'reload_aborted'
  | 'reload_partial'
  | 'listen_failed'
  | 'ca_exists'
  | 'ca_missing'
  | 'identity_invalid'
  | 'ca_unreachable'
  | 'ca_mismatch'
  | 'ca_refused'
  | 'internal';

export class MeshcarError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (rate limits). */
  readonly retryAfterSeconds: number | undefined;
  /** The methods the resource takes, for a 405's Allow field (RFC 9110 §15.5.6: it must be sent). */
  readonly allow: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterSeconds?: number; allow?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeshcarError';
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.allow = options.allow;
  }
}

export function isMeshcarError(err: unknown): err is MeshcarError {
  return err instanceof MeshcarError;
}

/**
 * A listener that could not bind: its own code, apart from config_invalid (the config may be
 * right; the port is taken or privileged), with what to do for the usual errno codes.
 */
export function listenFailed(what: string, err: NodeJS.ErrnoException): MeshcarError {
  const advice: Record<string, string> = {
    EADDRINUSE: 'another process holds the port (ss -ltnp names it): stop it or choose another port',
    EACCES: 'ports below 1024 need privileges: choose a port from 1024',
    EADDRNOTAVAIL: 'no interface of this host has that address',
  };
  const fix = err.code === undefined ? undefined : advice[err.code];
  return new MeshcarError('listen_failed', `${what}: ${err.message}${fix ? `; ${fix}` : ''}`, { cause: err });
}

/** A one-line description of any thrown value, for logs and the command line. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

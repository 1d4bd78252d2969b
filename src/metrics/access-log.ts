// The access log: one JSON line per request on stdout through pino (time, direction, peer,
// method, route, path without query, status, duration, bytes, endpoint, request id, error, and
// the first OpenAPI violation as `schema`; for gRPC requests `grpcStatus`; for a request the
// outbound retried, `retries`).
// Never a certificate, key or token: only the fields of a RequestRecord are written. A request
// the HTTP/1.1 parser refused is a line too (status, error, no method or path), as Envoy logs
// it: the app or caller got a 400/408/431 from the sidecar, and the log must show it.

import type { Logger } from 'pino';
import type { RefusedRequest, RequestRecord, TrafficObserver } from './traffic.js';
import { NO_OBSERVER } from './traffic.js';
import { clip, clipLogged } from '../clip.js';

/**
 * A method and a path are written at most this long (with how long they were): the head limits
 * alone bounded them, and an HTTP/2 caller's 3,000-character method token or an 8,000-character
 * path went into every line on both sidecars (the observability review). The metrics already
 * fold such a method into OTHER; the longest registered method is 17 characters. The path's
 * bound is in bytes as the line writes it (clipLogged): 2,047 quotes made a 4.4 KB line, past
 * what a pipe takes in one write, and such lines could be split by another worker's (logging.ts).
 */
export const MAX_LOGGED_METHOD = 32;
export const MAX_LOGGED_PATH = 2048;

/** A path as log lines write it: at most MAX_LOGGED_PATH bytes there, with its length when cut. */
export function loggedPath(path: string): string {
  return clipLogged(path, MAX_LOGGED_PATH);
}

/**
 * An OpenAPI violation's message, which quotes what the caller sent (200 characters each, up to
 * two quotes), at most this many bytes as the line writes it: with the path's 2048, a 200-byte
 * request id of quotes (400) and the rest of the fields, an access line stays under 4096.
 * Unbounded in bytes, 300 C1 controls in an x-http-method-override made a 5.4 KB line.
 */
export const MAX_LOGGED_VIOLATION = 1024;

function loggedViolation(violation: { readonly kind: string; readonly message: string } | undefined): { kind: string; message: string } | undefined {
  return violation === undefined ? undefined : { kind: violation.kind, message: clipLogged(violation.message, MAX_LOGGED_VIOLATION) };
}

export class AccessLog implements TrafficObserver {
  private readonly log: Logger;

  constructor(logger: Logger, private readonly routeOf: (record: RequestRecord) => string | undefined = () => undefined) {
    // fixed at info: log.access alone turns the access log on and off; log.level (warn, error,
    // silent) sets what else is logged, it must not silently hide every access line. Set after
    // the child is made: pino gives a child its own level only when the option differs from
    // its parent's, so one made while the root was at info followed the root's later level.
    this.log = logger.child({ component: 'access' });
    this.log.level = 'info';
  }

  requestFinished(record: RequestRecord): void {
    const query = record.path.indexOf('?');
    this.log.info({
      direction: record.direction,
      peer: record.peer,
      method: clip(record.method, MAX_LOGGED_METHOD),
      route: this.routeOf(record),
      path: loggedPath(query === -1 ? record.path : record.path.slice(0, query)),
      status: record.status,
      durationMs: Math.round(record.durationSeconds * 1e6) / 1e3,
      bytesIn: record.bytesIn,
      bytesOut: record.bytesOut,
      endpoint: record.endpoint,
      requestId: record.requestId,
      error: record.errorCode,
      // the first OpenAPI violation, {kind, message}; absent when the request passed or no spec applies
      schema: loggedViolation(record.schema?.violation),
      // gRPC requests only: the grpc-status the caller was given (null: its answer carried none)
      grpcStatus: record.grpcStatus,
      // outbound: the retries made (absent when none), `endpoint` being the last attempt's
      retries: record.retries,
    });
  }

  requestRefused(refused: RefusedRequest): void {
    this.log.info({ direction: refused.direction, requestId: refused.requestId, peer: refused.peer, method: refused.method === undefined ? undefined : clip(refused.method, MAX_LOGGED_METHOD), status: refused.status, bytesIn: 0, bytesOut: refused.bytesOut, error: refused.errorCode });
  }

  tlsHandshakeFailed = NO_OBSERVER.tlsHandshakeFailed;
  upstreamSessionsChanged = NO_OBSERVER.upstreamSessionsChanged;
  upstreamStreamsChanged = NO_OBSERVER.upstreamStreamsChanged;
}

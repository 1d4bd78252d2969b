// An upstream pool's slow path and failover (upstream-pool.ts has the fast path): a stream
// when no open session had a free slot (the agent, or the meshcar codec's H2SessionPool,
// opens a session or queues for one; a session found closing is retried), and the failover
// under it and under tunnels: endpoints that cannot be reached (nothing sent yet) are marked
// down for the backoff, penalised in the balancer, logged once, and the next one is tried, up
// to three distinct endpoints. Plain functions of the pool.

import type { ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import { MeshcarError, describeError } from '../errors.js';
import { outboundFailure } from '../tls-failures/describe.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { countStream } from './pool-counting.js';
import { classifyConnectError, isBadRequestError, isHeaderListTooLargeError, isSessionClosingError } from './upstream-errors.js';
import type { OpenedStream, UpstreamPool } from './upstream-pool.js';
import { adaptH2Stream } from './upstream-stream.js';
import { watchEarlyEnd } from '../http/early-end.js';

export function badRequest(err: unknown): MeshcarError {
  // a head over the upstream's SETTINGS_MAX_HEADER_LIST_SIZE (src/h2 refuses it before sending): 431
  if (isHeaderListTooLargeError(err)) return new MeshcarError('headers_too_large', `the request head is over what the upstream accepts: ${describeError(err)}`, { cause: err });
  return new MeshcarError('bad_request', `the request cannot be sent upstream: ${describeError(err)}`, { cause: err });
}

/** Tries per request on distinct endpoints, for failures before any byte was sent. */
const MAX_CONNECT_ATTEMPTS = 3;
/** Retries when a session turned out to be closing between the pick and the request. */
const MAX_CLOSING_RETRIES = 2;

// Fixed for every request of every pool: http2-wrapper copies it when opening a session.
// A 1 MiB stream window (http2-wrapper's default is 32 MiB) keeps a slow app from making us
// hold much of a fast upstream's body: flow control is the backpressure across the hop.
const AGENT_OPTIONS = Object.freeze({ settings: Object.freeze({ enablePush: false, initialWindowSize: 1 << 20 }) });

/** A stream through the agent (or the meshcar codec's pool), on `first` if given, with failover. */
export async function openSlowly(pool: UpstreamPool, headers: OutgoingHttpHeaders | string[], options: ClientSessionRequestOptions, first: UpstreamEndpoint | undefined): Promise<OpenedStream> {
  let closingRetries = 0;
  return withFailover(pool, first, async (endpoint) => {
    for (;;) {
      try {
        const stream = pool.own ? adaptH2Stream(await pool.own.request(endpoint, headers, options)) : watchEarlyEnd(await pool.agent().request(endpoint.origin, AGENT_OPTIONS, headers as OutgoingHttpHeaders, options));
        countStream(pool, stream, endpoint);
        return { stream, endpoint };
      } catch (err) {
        if (isSessionClosingError(err) && closingRetries++ < MAX_CLOSING_RETRIES) continue;
        if (isBadRequestError(err)) throw badRequest(err);
        throw err;
      }
    }
  });
}

/** Tries `attempt` on endpoints in turn (`first`, if given, then round-robin) while they cannot be reached. */
export async function withFailover<T extends { endpoint: UpstreamEndpoint }>(pool: UpstreamPool, first: UpstreamEndpoint | undefined, attempt: (endpoint: UpstreamEndpoint) => Promise<T>): Promise<T> {
  if (pool.closed) throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
  if (pool.endpoints.size === 0) await pool.endpoints.pending();
  const attempts = Math.max(1, Math.min(pool.endpoints.size, MAX_CONNECT_ATTEMPTS));
  let tried: Set<UpstreamEndpoint> | undefined;
  let lastError: MeshcarError | undefined;
  let next = first;
  for (;;) {
    const endpoint = next ?? pool.endpoints.pick(Date.now(), undefined, tried);
    next = undefined;
    if (!endpoint) throw lastError ?? new MeshcarError('upstream_unavailable', `no address is known for upstream ${pool.name}`);
    try {
      return await attempt(endpoint);
    } catch (err) {
      if (err instanceof MeshcarError && (err.code === 'bad_request' || err.code === 'headers_too_large')) throw err;
      const failure = classifyConnectError(err, endpoint.key);
      if (failure.tlsReason) pool.deps.observer.tlsHandshakeFailed('outbound', failure.tlsReason, outboundFailure(endpoint.key, failure.tlsReason, err));
      const now = Date.now();
      if (endpoint.downUntil <= now) {
        pool.deps.logger.warn({ upstream: pool.name, endpoint: endpoint.key, code: failure.error.code, err: failure.error.message }, 'upstream endpoint failed');
      }
      endpoint.downUntil = now + pool.deps.settings.endpointBackoffMs;
      pool.health.failedWithPenalty(endpoint, 0);
      lastError = failure.error;
      (tried ??= new Set()).add(endpoint);
      if (tried.size >= attempts) throw lastError;
    }
  }
}

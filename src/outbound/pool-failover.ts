// An upstream pool's slow path and failover (upstream-pool.ts has the fast path): a stream
// when no open session had a free slot (the agent, or the meshcar codec's H2SessionPool,
// opens a session or queues for one; a session found closing is retried), and the failover
// under it and under tunnels: endpoints that cannot be reached (nothing sent yet) are marked
// down for the backoff, penalised in the balancer, logged once, and the next one is tried, up
// to three distinct endpoints. Each endpoint's wait is bounded (connectTimeoutMs × 4, as the
// meshcar pool bounds its dials): its expiry is that endpoint's failure, so a silent endpoint
// stops being picked; a requester that goes away cancels its wait. Plain functions of the pool.

import type { ClientHttp2Session, ClientHttp2Stream, ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { MeshcarError, describeError } from '../errors.js';
import { outboundFailure } from '../tls-failures/describe.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { countStream } from './pool-counting.js';
import { adopt, closeIfRemoved, heldForProbe } from './pool-sessions.js';
import { nodeCodec } from './node-codec.js';
import type { UpstreamAgent } from './upstream-agent.js';
import { UPSTREAM_MAX_HEAD_BYTES, UPSTREAM_MAX_HEAD_FIELDS } from './head-limits.js';
import { classifyConnectError, isBadRequestError, isHeaderListTooLargeError, isSessionClosingError } from './upstream-errors.js';
import type { UpstreamPool } from './upstream-pool.js';
import type { OpenedStream } from './pool-contract.js';
import { adaptH2Stream, cancelStream, type UpstreamStream } from './upstream-stream.js';
import { isWaitCancelled, type StreamWait } from './stream-wait.js';
import { noteSession } from './goaway-refused.js';
import { watchEarlyEnd } from '../http/early-end.js';
import { LogPerKey, leftOut } from '../log-per-key.js';
import { firstAddresses } from './first-addresses.js';

export function badRequest(err: unknown): MeshcarError {
  // a head over the upstream's SETTINGS_MAX_HEADER_LIST_SIZE (src/h2 refuses it before sending): 431
  if (isHeaderListTooLargeError(err)) return new MeshcarError('headers_too_large', `the request head is over what the upstream accepts: ${describeError(err)}`, { cause: err });
  return new MeshcarError('bad_request', `the request cannot be sent upstream: ${describeError(err)}`, { cause: err });
}

/** Tries per request on distinct endpoints, for failures before any byte was sent. */
export const MAX_CONNECT_ATTEMPTS = 3;
/** Retries when a session turned out to be closing between the pick and the request. */
const MAX_CLOSING_RETRIES = 2;
/** A request waits for a stream on one endpoint at most this many connect timeouts (the meshcar pool's MAX_DIALS + 1). */
const WAIT_BOUND_CONNECT_TIMEOUTS = 4;

// Fixed for every request of every pool: http2-wrapper copies it when opening a session.
// A 1 MiB stream window (http2-wrapper's default is 32 MiB) keeps a slow app from making us
// hold much of a fast upstream's body: flow control is the backpressure across the hop.
// maxHeaderListPairs: as many fields per answer as the upstream sidecar accepts per request (head-limits.ts).
// maxHeaderListSize: the answer head we take, advertised as the meshcar codec's client does.
// Without it the inbound read the limit as unbounded and sent a 70 KB head, which Node's client
// stalled on silently: the stream hung to the timeout and the session with it (every call on it
// waited until the keepalive PING killed it). Told, the inbound refuses that one stream (502).
// Node then resets a longer head ENHANCE_YOUR_CALM, its stream alone; attempt-answer.ts still
// measures heads on streams opened before the upstream acknowledged it.
const AGENT_OPTIONS = Object.freeze({
  maxHeaderListPairs: UPSTREAM_MAX_HEAD_FIELDS,
  settings: Object.freeze({ enablePush: false, initialWindowSize: 1 << 20, maxHeaderListSize: UPSTREAM_MAX_HEAD_BYTES }),
});

/** A stream through the agent (or the meshcar codec's pool), on `first` if given, with failover. */
export async function openSlowly(pool: UpstreamPool, headers: OutgoingHttpHeaders | string[], options: ClientSessionRequestOptions, first: UpstreamEndpoint | undefined, wait: StreamWait): Promise<OpenedStream> {
  const attempt = async (endpoint: UpstreamEndpoint): Promise<OpenedStream> => {
    // counted against its endpoint from the pick, not from its stream: a new or re-admitted
    // endpoint (no latency yet, nothing outstanding: cost 0) would otherwise draw every request
    // into its dial, ~2/3 of the traffic with power of two choices over three endpoints; with a
    // request waiting its cost is the balancer's unknown-endpoint penalty (balancer.ts)
    endpoint.outstanding += 1;
    try {
      return await openOn(pool, endpoint, headers, options, wait);
    } finally {
      endpoint.outstanding -= 1;
      // a request that left while a removed endpoint's dial ran: its late session goes
      closeIfRemoved(pool, endpoint);
    }
  };
  return withFailover(pool, first, attempt, wait);
}

/** One endpoint's stream: the agent's or the meshcar pool's, within the wait's bound; a session found closing is retried. */
async function openOn(pool: UpstreamPool, endpoint: UpstreamEndpoint, headers: OutgoingHttpHeaders | string[], options: ClientSessionRequestOptions, wait: StreamWait): Promise<OpenedStream> {
  let closingRetries = 0;
  for (;;) {
    try {
      const limitMs = pool.connectTimeoutMs * WAIT_BOUND_CONNECT_TIMEOUTS;
      // the session layers get this bound's own token: its expiry stops them too (no dial on,
      // no request head sent to an endpoint the failover has left)
      const own = pool.own;
      const stream = own
        ? adaptH2Stream(await wait.bound(endpoint, limitMs, (token) => own.request(endpoint, headers, options, token), dropLate))
        : watchEarlyEnd(noteSession(await wait.bound<ClientHttp2Stream>(endpoint, limitMs, (token) => heldForProbe(pool, endpoint, token).then(() => nodeAgentOf(pool).requestFor(endpoint, AGENT_OPTIONS, headers as OutgoingHttpHeaders, options, token)), dropLate)));
      countStream(pool, stream, endpoint);
      return { stream, endpoint };
    } catch (err) {
      if (isSessionClosingError(err) && closingRetries++ < MAX_CLOSING_RETRIES) continue;
      if (isBadRequestError(err)) throw badRequest(err);
      throw err;
    }
  }
}

/** Tries `attempt` on endpoints in turn (`first`, if given, then round-robin) while they cannot be reached; with no address known yet, waits for one first (first-addresses.ts). */
export async function withFailover<T extends { endpoint: UpstreamEndpoint }>(pool: UpstreamPool, first: UpstreamEndpoint | undefined, attempt: (endpoint: UpstreamEndpoint) => Promise<T>, wait?: StreamWait): Promise<T> {
  if (pool.closed) throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
  if (pool.endpoints.size === 0) await firstAddresses(pool, wait);
  const attempts = Math.max(1, Math.min(pool.endpoints.size, MAX_CONNECT_ATTEMPTS));
  let tried: Set<UpstreamEndpoint> | undefined;
  let lastError: MeshcarError | undefined;
  let next = first;
  for (;;) {
    const endpoint = next ?? pool.endpoints.pick(performance.now(), undefined, tried);
    next = undefined;
    if (!endpoint) throw lastError ?? new MeshcarError('upstream_unavailable', `no address is known for upstream ${pool.name}`);
    try {
      return await attempt(endpoint);
    } catch (err) {
      if (err instanceof MeshcarError && err.code === 'bad_request') throw err;
      if (err instanceof MeshcarError && err.code === 'headers_too_large') {
        // over this endpoint's SETTINGS_MAX_HEADER_LIST_SIZE (nothing sent): another endpoint may
        // take the head, and this one is turned away from (a penalty, no failure: the head may be
        // the app's doing). A peer announcing a tiny limit otherwise had every request answered
        // 431, blamed on the app, while it drew the traffic. 431 once none takes it.
        pool.health.penalized(endpoint);
        lastError = err;
        (tried ??= new Set()).add(endpoint);
        if (tried.size >= attempts) throw err;
        continue;
      }
      // the requester gave up: nothing is known of the endpoint
      if (isWaitCancelled(err)) throw err;
      lastError = endpointFailed(pool, endpoint, err);
      (tried ??= new Set()).add(endpoint);
      if (tried.size >= attempts) throw lastError;
    }
  }
}

/** A stream made after its wait ended (a race the session layers' `cancelled` checks leave open): reset, never used. */
function dropLate(stream: unknown): void {
  const up = stream as UpstreamStream;
  up.on('error', ignore);
  cancelStream(up);
}

function ignore(): void {}

/** One process, one shortage: the log line about it is shared by every pool. */
const LOCAL_SHORTAGE_LOG = new LogPerKey();

/** The failure each dial's error was recorded as: a dial that fails every request waiting on it is one failure. */
const RECORDED = new WeakMap<object, MeshcarError>();

/**
 * An endpoint could not give a stream: it rests for the backoff, takes a penalty in the
 * balancer, is logged (once per outage) and, for a TLS failure, counted. Called where the dial
 * fails (upstream-agent.ts, h2-session-pool.ts), so a dial nobody waits for any more still
 * counts, and again by each request that waited on it (withFailover): the same error object is
 * recorded once, so N waiters do not make N consecutive failures (an ejection). A shortage of
 * this host's (EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS) is no failure of the endpoint: it is
 * logged and the request fails (503 naming it), the endpoint keeps its standing. Nothing is
 * recorded once the pool is closing: what fails then (the agent destroyed, the session pool
 * shutting down) is the pool's own doing, at every call site.
 */
export function endpointFailed(pool: UpstreamPool, endpoint: UpstreamEndpoint, err: unknown): MeshcarError {
  const key = typeof err === 'object' && err !== null ? err : undefined;
  const known = key && RECORDED.get(key);
  if (known) return known;
  const failure = classifyConnectError(err, endpoint.key);
  if (pool.closed) return failure.error;
  if (key) RECORDED.set(key, failure.error);
  if (failure.tlsReason) pool.deps.observer.tlsHandshakeFailed('outbound', failure.tlsReason, outboundFailure(endpoint.key, failure.tlsReason, err));
  if (failure.local) {
    // this host ran short (EMFILE...): the endpoint keeps its standing; logged at most once per cause per 10 s
    const through = LOCAL_SHORTAGE_LOG.take(String((err as { code?: unknown }).code));
    if (through) pool.deps.logger.warn({ upstream: pool.name, endpoint: endpoint.key, err: failure.error.message }, `cannot connect upstream: a local shortage, not held against the endpoint${leftOut(through, 'like it')}`);
    return failure.error;
  }
  // the running time, not the wall clock: a clock stepped back (NTP, a VM restored) kept a
  // healthy endpoint out for as long as the step, an hour's step for an hour
  const now = performance.now();
  if (endpoint.downUntil <= now) {
    pool.deps.logger.warn({ upstream: pool.name, endpoint: endpoint.key, code: failure.error.code, err: failure.error.message }, 'upstream endpoint failed');
  }
  endpoint.downUntil = now + pool.deps.settings.endpointBackoffMs;
  pool.health.failedWithPenalty(endpoint, 0);
  return failure.error;
}

/** http2-wrapper's agent (codec `node`), made at the first request that needs a new session (the slow path above). */
export function nodeAgentOf(pool: UpstreamPool): UpstreamAgent {
  if (pool.nodeAgent) return pool.nodeAgent;
  const kit = nodeCodec();
  const agent = new kit.UpstreamAgent({
    identity: pool.deps.identity,
    budgets: pool.deps.budgets,
    expectedId: pool.config.identity,
    connectTimeoutMs: () => pool.connectMs,
    endpointFor: (host) => pool.endpoints.forOriginHost(host),
    dialFailed: (endpoint, err) => void endpointFailed(pool, endpoint, err),
  });
  pool.nodeKit = kit;
  pool.nodeAgent = agent;
  agent.on('session', (session: ClientHttp2Session) => adopt(pool, session));
  return agent;
}

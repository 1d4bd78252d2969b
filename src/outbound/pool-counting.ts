// What an upstream pool (upstream-pool.ts) notes on each stream it hands out, and counts by
// it: streams in flight (per pool for the circuit breaker, per endpoint for the balancer, and
// the observer's gauge), and each stream's outcome for its endpoint's health (balancer.ts):
// its answer's status and latency, or a failure if it closed unanswered or its endpoint cut
// the answer after the head (the attempt controller tells: markAnswerCut), unless it was
// cancelled because the app went away (no fault of the endpoint's; the time it waited is
// still a latency the endpoint had at least). The stream carries
// its endpoint and start; its 'response' and 'close' listeners are one pair of functions per
// pool, made at its construction, not a closure per request. A gRPC answer's verdict is in its
// trailers (grpc-status), so its endpoint is judged when they come, with the head's latency.

import type { IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { effectiveStatus, grpcAnswerType, grpcHealthStatus } from '../http/status.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { EndpointHealth } from './balancer.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { UpstreamPool } from './upstream-pool.js';
import { closeIfRemoved } from './pool-sessions.js';
import { watchAnswersOf } from './session-probe.js';
import { responseEnds, type UpstreamStream } from './upstream-stream.js';

// what the pool notes on each of its streams, read by its shared 'response' and 'close' listeners
const ENDPOINT = Symbol('meshcar.endpoint');
const OPENED = Symbol('meshcar.opened');
/** performance.now() when the request was whole on the stream (its head, and its body if any). */
const SENT = Symbol('meshcar.sent');
const ANSWERED = Symbol('meshcar.answered');
const CANCELLED = Symbol('meshcar.cancelled');
/** A gRPC answer's head came (its latency, ms): the verdict waits for its trailers. */
const GRPC_PENDING = Symbol('meshcar.grpcPending');
/** The endpoint held the upload back at some point (flow control: a 'drain' before the request was whole). */
const HELD = Symbol('meshcar.held');
/** Ms from the stream's opening to the 100 Continue the app was given: the endpoint's time before the upload. */
const CONTINUE_WAIT = Symbol('meshcar.continueWait');
/** Its answer was cut after the head, and counted so (markAnswerCut). */
const CUT = Symbol('meshcar.cut');
/** The app gave up at its own deadline with the answer unfinished (markUnfinishedAtDeadline). */
const OVERDUE = Symbol('meshcar.overdue');
export interface TrackedStream extends UpstreamStream {
  [ENDPOINT]?: UpstreamEndpoint;
  [OPENED]?: number;
  [SENT]?: number | undefined;
  [HELD]?: boolean;
  [CONTINUE_WAIT]?: number;
  [ANSWERED]?: boolean;
  [CANCELLED]?: boolean;
  [GRPC_PENDING]?: number | undefined;
  [CUT]?: boolean;
  [OVERDUE]?: boolean;
}

export type StreamResponded = (this: TrackedStream, head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number | boolean) => void;
export type StreamClosed = (this: TrackedStream) => void;

/** The pool's 'response' listener for all its streams: the endpoint's first answer, judged. */
export function streamRespondedListener(health: EndpointHealth<UpstreamEndpoint>): StreamResponded {
  /** A gRPC answer's trailers: its endpoint judged by grpc-status, with the head's latency. */
  function onGrpcTrailers(this: TrackedStream, trailers: IncomingHttpHeaders): void {
    const latency = this[GRPC_PENDING];
    const endpoint = this[ENDPOINT];
    if (latency === undefined || endpoint === undefined) return;
    this[GRPC_PENDING] = undefined;
    health.responded(endpoint, grpcHealthStatus(trailers['grpc-status']), latency);
  }
  return function (head, flags) {
    const endpoint = this[ENDPOINT];
    if (endpoint === undefined || this[ANSWERED]) return;
    this[ANSWERED] = true;
    const latency = sinceRequest(this);
    // a remote sidecar's own error counts as its status, also when a gRPC caller got it as 200
    const status = effectiveStatus(Number(head[':status']), head);
    if (status === 200 && isGrpc(head['content-type'])) {
      // trailers-only: the verdict is in a head that ends the answer; else it comes with the
      // trailers (a grpc-status in a head with more to come is not the call's)
      if (head['grpc-status'] !== undefined && responseEnds(flags)) health.responded(endpoint, grpcHealthStatus(head['grpc-status']), latency);
      else {
        this[GRPC_PENDING] = latency;
        this.once('trailers', onGrpcTrailers);
      }
      return;
    }
    health.responded(endpoint, status, latency);
  };
}

/**
 * The time the endpoint has had the request: from its end (its head, and its body if any), or
 * from the stream's opening for an answer that came before that end. While an app's upload is
 * still coming the time is the app's: counted from the opening, a healthy endpoint's answer to
 * a 400 ms upload weighed more than the penalty of an endpoint failing at once, and the failing
 * one drew the calls (README: the latency counts after the request was whole).
 */
function sinceRequest(stream: TrackedStream): number {
  // an upload the endpoint held back ended late because of it: from the opening then, or an
  // endpoint that stops reading uploads for a while looked fast and drew the calls (a review:
  // 15 of 16 to the one holding 2 MB uploads 400 ms)
  if (stream[HELD] || stream[SENT] === undefined) return performance.now() - (stream[OPENED] as number);
  // with Expect: 100-continue, the wait for the 100 was the endpoint's too; the upload after it the app's
  return performance.now() - stream[SENT] + (stream[CONTINUE_WAIT] ?? 0);
}

/** The pool's 'drain' listener for all its streams: the endpoint had held the upload back. */
export function streamDrained(this: TrackedStream): void {
  if (this[SENT] === undefined) this[HELD] = true;
}

/** The app was told to send its body (the endpoint's 100 Continue, or ours at the grace): the wait until now was the endpoint's. */
export function markContinued(stream: UpstreamStream): void {
  const s = stream as TrackedStream;
  if (s[OPENED] !== undefined) s[CONTINUE_WAIT] = performance.now() - s[OPENED];
}

/**
 * A gRPC answer's content type (application/grpc, +proto, +json: grpc-status in HTTP/2
 * trailers); gRPC-Web carries its status in the body, so it is judged by its head. Most
 * answers are ruled out by one character, with no lower-casing.
 */
function isGrpc(contentType: unknown): boolean {
  // 'application/grpc...': index 12 is its 'g' (any case), 'j' in application/json
  return typeof contentType === 'string' && (contentType.charCodeAt(12) | 0x20) === 0x67 && grpcAnswerType(contentType) === 'application/grpc';
}

/** The pool's 'close' listener for all its streams: one fewer in flight; unanswered, a failure. */
export function streamClosedListener(pool: UpstreamPool, health: EndpointHealth<UpstreamEndpoint>, observer: TrafficObserver, name: string): StreamClosed {
  return function () {
    observer.upstreamStreamsChanged(name, -1);
    pool.active -= 1;
    // a retired pool keeps no session past its last stream: one a late retry opened would
    // otherwise live to its maximum age
    if (pool.retired && pool.active === 0) pool.closeSessionsGracefully();
    const endpoint = this[ENDPOINT];
    if (endpoint === undefined) return;
    endpoint.outstanding -= 1;
    // the last stream on an endpoint a reload or DNS removed meanwhile: its sessions go too
    if (endpoint.outstanding === 0) closeIfRemoved(pool, endpoint);
    // closed with no response: a reset, a timeout (cancelled by the forwarder), a dead session;
    // an app that gives up on its own request is no failure of the endpoint (an app timing out
    // faster than a healthy endpoint answers would otherwise get it ejected), but the endpoint
    // did take that long: a latency it had at least (an endpoint that never answers drew every
    // request of apps with deadlines, each cut by its app, its cost left at nothing)
    // counted from the request's end: while the app's upload was still coming, the time was the
    // app's, and an upload it abandoned says nothing of the endpoint
    // so does an answer still unfinished when its app gave up at its own deadline (a head, then
    // nothing: the head alone counted as a fast answer, and such an endpoint drew the calls)
    if (this[CANCELLED]) {
      const sent = this[SENT];
      if ((!this[ANSWERED] || this[OVERDUE]) && sent !== undefined) health.tookAtLeast(endpoint, performance.now() - sent);
      return;
    }
    if (!this[ANSWERED]) health.failedWithPenalty(endpoint, sinceRequest(this));
    else {
      // a gRPC answer that closed without its trailers has no status: the call failed (INTERNAL
      // for its client), as a gRPC server's reset or a cut body
      const latency = this[GRPC_PENDING];
      if (latency !== undefined) health.responded(endpoint, 500, latency);
    }
  };
}

/** A stream the pool hands out: counted until it closes, its outcome reported to the endpoint's health. */
export function countStream(pool: UpstreamPool, stream: TrackedStream, endpoint: UpstreamEndpoint): void {
  pool.deps.observer.upstreamStreamsChanged(pool.name, 1);
  pool.active += 1;
  endpoint.outstanding += 1;
  stream[ENDPOINT] = endpoint;
  stream[OPENED] = performance.now();
  stream[SENT] = undefined;
  stream[HELD] = false;
  stream[CONTINUE_WAIT] = undefined;
  stream[ANSWERED] = false;
  stream[CANCELLED] = false;
  stream[GRPC_PENDING] = undefined;
  stream[CUT] = false;
  stream[OVERDUE] = false;
  stream.on('response', pool.streamResponded);
  stream.on('close', pool.streamClosed);
  stream.on('drain', streamDrained);
}

/**
 * An answer its endpoint cut after the head (a reset, or a session lost, before the end of its
 * body; the attempt controller judges it: attempt-answer.ts, attempt-stream-ends.ts): a failure
 * with the time it took (at least the penalty) as its latency. Its head was counted a fast
 * success, so an endpoint that answers every request with a head and then a reset was the
 * cheapest one and drew most requests (28-38 of 40 beside a healthy endpoint), each one broken.
 * Once per stream; a gRPC answer's own verdict (no trailers: 500, at its close) stands instead.
 */
export function markAnswerCut(pool: UpstreamPool, stream: UpstreamStream): void {
  const s = stream as TrackedStream;
  const endpoint = s[ENDPOINT];
  if (endpoint === undefined || s[CANCELLED] || !s[ANSWERED] || s[GRPC_PENDING] !== undefined || s[CUT]) return;
  s[CUT] = true;
  pool.health.failedWithPenalty(endpoint, sinceRequest(s));
}

/**
 * The request is whole on `stream` (the attempt controller tells: a bodiless request or a
 * replay at once, an upload at its end); its session's silence watch starts (session-probe.ts).
 */
export function markRequestSent(stream: UpstreamStream): void {
  (stream as TrackedStream)[SENT] = performance.now();
  watchAnswersOf(stream);
}

/**
 * A stream whose answer was no use (over our limits, reset with ENHANCE_YOUR_CALM): not a
 * failure of its endpoint (markCancelled), but the balancer turns away from it; left uncharged,
 * an endpoint answering every request so drew them all (its cost decays to 0 without samples).
 */
export function markPenalized(pool: UpstreamPool, stream: UpstreamStream): void {
  markCancelled(stream);
  const endpoint = (stream as TrackedStream)[ENDPOINT];
  if (endpoint !== undefined) pool.health.penalized(endpoint);
}

/**
 * The app went away at its own deadline (grpc-timeout, x-request-timeout) while the answer was
 * still unfinished: as for a wait with no head, the endpoint took at least that long (the
 * response deadline ends at the head; a gRPC client's covers the call to its trailers).
 */
export function markUnfinishedAtDeadline(stream: UpstreamStream): void {
  (stream as TrackedStream)[OVERDUE] = true;
}

/** Before closing a stream the app no longer wants: its end is not counted against its endpoint. */
export function markCancelled(stream: UpstreamStream): void {
  (stream as TrackedStream)[CANCELLED] = true;
}

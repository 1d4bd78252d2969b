// The retries of an attempt controller (attempt.ts), for an attempt that failed before any of
// the response reached the app: whether another is safe (idempotent request, or one the upstream
// never processed; body kept within bufferLimit; no 100-continue), allowed and in time (the upstream's policy, retry.ts), letting go of the
// failed attempt's stream, the next attempt after the wait (on another endpoint when there is
// one), the outcome reported once per retry, and the app's body kept for replay as it goes by.
// Nothing here runs for a request that goes well but the body keeping, when a retry could use
// it. Plain functions of the controller; the timer carries it as its argument.

import type { ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Attempt } from './attempt.js';
import { MeshcarError } from '../errors.js';
import { attemptOf } from './attempt-events.js';
import { expectsContinue } from './expect-continue.js';
import { isRetryableRequest, type RetryOutcome, type RetryReason } from './retry.js';
import { cancelStream, type UpstreamStream } from './upstream-stream.js';
import { ReplayCopy } from '../http/replay-copy.js';
import { grpcTimeoutMs, requestTimeoutMs } from '../http/deadline.js';

/** The outcome of the attempt in progress, when it is a retry (reported once). */
export function reportRetry(attempt: Attempt, outcome: RetryOutcome): void {
  if (attempt.retryReason === undefined) return;
  attempt.pool.retry.report(attempt.retryReason, outcome);
  attempt.retryReason = undefined;
}

/** A 'data' listener on the app's body: kept for replay until over the limit. */
export function onKeepBody(this: Readable, chunk: Buffer): void {
  const attempt = attemptOf(this);
  if (attempt.body === null) return;
  attempt.bodySize += chunk.length;
  // copied, not kept as the view of the read it came in (replay-copy.ts)
  if (attempt.bodyCopy === undefined || !attempt.bodyCopy.add(chunk)) {
    attempt.body = null; // too large to replay: this request will not be retried
    attempt.bodyCopy = undefined;
    attempt.appBody.off('data', onKeepBody);
  }
}

/**
 * The first attempt's stream now carries the app's body: kept for replay while it goes by (no
 * added latency), if a retry could use it: any method's, as a stream the upstream refused
 * unprocessed is retried whatever the method (the copy goes once the answer starts).
 */
export function keepBodyForReplay(attempt: Attempt): void {
  const pool = attempt.pool;
  const headers = attempt.reqHeaders;
  if (pool.retry.attempts > 0 && !expectsContinue(headers.expect) && !(Number(headers['content-length']) > pool.retry.bufferLimit)) {
    attempt.body = [];
    attempt.bodyCopy = new ReplayCopy(pool.retry.bufferLimit);
    attempt.appBody.on('data', onKeepBody);
  }
}

/**
 * A later attempt's stream: the body kept is sent whole; an upload still coming is sent as far
 * as it went by and the rest piped on to this stream (as Envoy's router replays what it has
 * buffered and streams on), so a refusal that comes before the app's body ends is retried too.
 */
export function replayBody(attempt: Attempt, up: UpstreamStream): void {
  const kept = attempt.body;
  // never part of a body sent as if whole (abandon pauses an upload, so its copy stays whole)
  if (kept === null) {
    attempt.fail(new MeshcarError('upstream_unavailable', `the request to ${attempt.pool.name} was not sent again: its body went past retries.bufferLimit while the retry waited`));
    return;
  }
  const sofar = attempt.bodyCopy !== undefined ? attempt.bodyCopy.bytes() : kept.length === 1 ? (kept[0] as Buffer) : Buffer.concat(kept);
  if (attempt.bodyDone || attempt.appBody.readableEnded) {
    up.end(sofar);
    return;
  }
  if (sofar.length > 0) up.write(sofar);
  attempt.pipedTo = up;
  attempt.pipeRestOfBody(up);
}

/**
 * Answered: nothing will be replayed, so the copy kept for it goes (a gRPC or SSE stream would
 * otherwise hold up to bufferLimit for its whole life).
 */
export function dropKeptBody(attempt: Attempt): void {
  if (attempt.body !== null) {
    attempt.body = null;
    attempt.bodyCopy = undefined;
    attempt.appBody.off('data', onKeepBody);
  }
}

/** Lets go of the current attempt's stream: its listeners see it is no longer `upstream`. */
function abandon(attempt: Attempt): void {
  const old = attempt.upstream;
  attempt.upstream = undefined;
  if (old === undefined) return;
  old.setTimeout(0);
  if (attempt.piped) {
    attempt.appBody.unpipe(old);
    // an upload still coming waits for the retry's stream. unpipe alone can leave it flowing:
    // when the old stream's backpressure was pending, the pipe's drain handler resumes a body
    // that has 'data' listeners (the copy's, the byte count's), and a stream that closed first
    // had unpiped it already; what came then reached only the copy, and past bufferLimit nowhere
    attempt.appBody.pause();
  }
  if (!old.closed) cancelStream(old); // its 'error' listener (attempt-events.ts) ignores an abandoned stream
}

/** The retry timer's callback: the next attempt, avoiding the endpoint that failed and, when it can, every one tried before. */
function attemptAgain(attempt: Attempt): void {
  attempt.retryTimer = undefined;
  attempt.pool.retrying -= 1;
  if (attempt.over()) {
    attempt.pool.closeIfUnused();
    return;
  }
  // made (not only planned): the access log says how many (exchange.ts)
  attempt.exchange.retries = attempt.retries;
  passDeadline(attempt);
  // with three endpoints and two retries, the second went back to the first one's endpoint as
  // often as to the untried one: only the last was avoided
  if (attempt.lastEndpoint !== undefined) (attempt.triedEndpoints ??= new Set()).add(attempt.lastEndpoint);
  attempt.waiting = attempt.pool.openStream(attempt.headers as OutgoingHttpHeaders | string[], attempt.streamOptions as ClientSessionRequestOptions, attempt, attempt.lastEndpoint, attempt.triedEndpoints);
}

/**
 * The deadline the upstream is told, in the request's own field (grpc-timeout,
 * x-request-timeout; none is added): the time left before the sidecar gives up, when shorter
 * than the app's own deadline, as Envoy does with its route timeout and each gRPC hop passes on
 * the time left. The first attempt's head is changed only when that shortens it (no copy per
 * request otherwise); a retry's always says the time left (the original would give the
 * upstream more time than the caller still waits).
 * While the app's body is still to come, only the app's own deadline is passed on: our timeout
 * then starts at the body's end (attempt.ts streamOpened), but the upstream sidecar counts the
 * field from the head's arrival, and a limit of ours in it would cut a slow upload (a
 * client-streaming gRPC call longer than our timeout) that we ourselves let run.
 */
export function passDeadline(attempt: Attempt): void {
  const appDeadline = attempt.appDeadlineMs;
  if (appDeadline === undefined) return;
  const now = performance.now();
  const appLeft = appDeadline - (now - attempt.exchange.startedMs);
  // the head deadline armed (the app's, or ours once the body ended, or the wait for a stream):
  // the sidecar's limit for an answer from now; not yet ours while the body is unfinished
  const ours = attempt.bodyDone ? attempt.deadlineAt - now : Infinity;
  const left = Math.max(1, Math.floor(Math.min(appLeft, ours)));
  if (attempt.retries === 0 && left >= Math.floor(appLeft)) return;
  attempt.headers = withDeadlineLeft(attempt.headers as OutgoingHttpHeaders | string[], left);
}

/** grpc-timeout's units from milliseconds up, and its longest value: 8 digits. */
const GRPC_UNITS: ReadonlyArray<readonly [string, number]> = [['m', 1], ['S', 1000], ['M', 60_000], ['H', 3_600_000]];
const GRPC_MAX_DIGITS = 99_999_999;

/** `leftMs` as a grpc-timeout: in the smallest unit that keeps it to 8 digits, rounded up (at most `99999999H`). */
function grpcTimeout(leftMs: number): string {
  for (const [unit, ms] of GRPC_UNITS) {
    const count = Math.ceil(leftMs / ms);
    if (count <= GRPC_MAX_DIGITS) return `${count}${unit}`;
  }
  return `${GRPC_MAX_DIGITS}H`;
}

/**
 * The request's head with its deadline fields saying `leftMs`; a copy, never the original. Only
 * a field the sidecar could read is rewritten: one it could not (`grpc-timeout: 1x`, `0`) was
 * none to it and goes on as the app sent it, for the upstream to judge, on a retry too.
 */
export function withDeadlineLeft(headers: OutgoingHttpHeaders | string[], leftMs: number): OutgoingHttpHeaders | string[] {
  const grpc = grpcTimeout(leftMs);
  const own = `${leftMs}ms`;
  if (Array.isArray(headers)) {
    const list = headers.slice();
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === 'grpc-timeout' && grpcTimeoutMs(list[i + 1]) !== undefined) list[i + 1] = grpc;
      else if (list[i] === 'x-request-timeout' && requestTimeoutMs(list[i + 1]) !== undefined) list[i + 1] = own;
    }
    return list;
  }
  const copy = { ...headers };
  if (grpcTimeoutMs(copy['grpc-timeout']) !== undefined) copy['grpc-timeout'] = grpc;
  if (requestTimeoutMs(copy['x-request-timeout']) !== undefined) copy['x-request-timeout'] = own;
  return copy;
}

/**
 * The attempt failed before anything of the response reached the app: schedules another
 * when that is safe, allowed and in time (true), else false and the caller answers as before.
 */
export function tryRetry(attempt: Attempt, reason: RetryReason, retryAfter?: unknown, neverProcessed = false): boolean {
  if (attempt.over()) return false;
  if (!safeToRepeat(attempt, neverProcessed)) return false;
  const pool = attempt.pool;
  // a wait is a quiet spell of the request: no longer than the upstream's idleTimeout, also
  // without a deadline (timeout 0), or a Retry-After of an hour held the app's request an hour
  // (review-up L3); longer, the 503 or 429 goes to the app as it is, Retry-After and all
  // a 503's Retry-After is what the endpoint that answered asks: a retry that can go to another
  // endpoint waits the backoff, not the 5 s one replica asked for (the outbound review: 5 of 40
  // GETs waited it beside two healthy replicas). A 429's is always waited: its rate limit may be
  // shared by every replica (RFC 6585), and retries sent at once met it empty (its second review)
  const now = performance.now();
  const elsewhere = reason === 'status_503' && retryAfter !== undefined && pool.endpoints.hasOther(now, attempt.lastEndpoint, attempt.triedEndpoints);
  const wait = pool.retry.plan(attempt.retries + 1, elsewhere ? undefined : retryAfter, Math.min(attempt.deadlineAt - now, attempt.idleTimeoutMs));
  reportRetry(attempt, 'failure');
  if (wait < 0) return false;
  attempt.retries += 1;
  attempt.retryReason = reason;
  abandon(attempt);
  // counted on the pool while it waits: a pool retired by a reload is kept for it (isIdle)
  attempt.pool.retrying += 1;
  attempt.retryTimer = setTimeout(attemptAgain, wait, attempt);
  return true;
}

/** The request may be sent again, as far as the request itself goes (its method, its body); budget and time aside. */
export function safeToRepeat(attempt: Attempt, neverProcessed = false): boolean {
  // a request the upstream never processed (REFUSED_STREAM, a stream above a GOAWAY's last id:
  // RFC 9113 §8.7; no stream at all) is safe to send again whatever its method
  if ((!neverProcessed && !isRetryableRequest(attempt.exchange.method, attempt.reqHeaders)) || expectsContinue(attempt.reqHeaders.expect)) return false;
  // the body as far as it went by is kept (replayBody sends it again and pipes the rest on)
  if (attempt.piped && attempt.body === null) return false;
  // a body read ahead for the OpenAPI check is kept whole whatever its size: the limit holds too
  return attempt.bodySize <= attempt.pool.retry.bufferLimit;
}

/** The attempt is over: a retry still waiting out its backoff will not be made. */
export function stopRetryTimer(attempt: Attempt): void {
  if (attempt.retryTimer === undefined) return;
  clearTimeout(attempt.retryTimer);
  attempt.retryTimer = undefined;
  attempt.pool.retrying -= 1;
  attempt.pool.closeIfUnused();
}

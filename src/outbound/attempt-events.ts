// How events reach an attempt controller (attempt.ts) without a closure per request: the
// controller is noted on each emitter it listens to (app request, response or stream, and
// each attempt's upstream stream) under one symbol, and every listener and timer callback is
// one shared function that finds it there (those of the retries, the body kept for replay and
// the retry timer, are in attempt-retry.ts; the deadline queue's, in attempt-deadline.ts). What
// an error or an idle stream means is judged in attempt-stream-ends.ts; the answer's head and
// the stream's close, in attempt-answer.ts.

import type { IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import type { UpstreamStream } from './upstream-stream.js';
import type { Attempt } from './attempt.js';
import { MeshcarError } from '../errors.js';
import { clearIdleTimerOnDestroy } from '../http/idle-timer-release.js';
import { headObjectBytes } from '../http/head-list-bytes.js';
import { bodyEnded } from './attempt-deadline.js';
import { UPSTREAM_MAX_HEAD_BYTES, upstreamTrailersProblem } from './head-limits.js';
import { streamError, streamIdle } from './attempt-stream-ends.js';
import { streamClosed, upstreamResponse } from './attempt-answer.js';
import { replayEarlyEnd } from './early-stream-end.js';

const kAttempt = Symbol('meshcar.outbound.attempt');
type Bound = { [kAttempt]: Attempt };

export function attemptOf<A extends Attempt = Attempt>(emitter: unknown): A {
  return (emitter as Bound)[kAttempt] as A;
}

/** `undefined`: let go of it (an emitter that outlives the request, such as its connection). */
export function bindAttempt(emitter: object, attempt: Attempt | undefined): void {
  (emitter as { [kAttempt]?: Attempt })[kAttempt] = attempt;
}

/** The listeners of an attempt's stream, and its idle timeout. */
export function listenToUpstream(up: UpstreamStream, idleTimeoutMs: number): void {
  up.on('response', onUpstreamResponse);
  up.on('trailers', onUpstreamTrailers);
  up.on('error', onUpstreamError);
  up.on('close', onUpstreamClose);
  up.setTimeout(idleTimeoutMs, onUpstreamIdle);
  // Node's stream (http2.codec: node), cut before it closed (cancelStream()), would keep its
  // timer armed, and through it this attempt, for the idle timeout (idle-timer-release.ts)
  if ('pending' in up) clearIdleTimerOnDestroy(up);
  // a stream that ended before these listeners were on it (early-stream-end.ts)
  replayEarlyEnd(up, onUpstreamError as (this: unknown, err: Error) => void, onUpstreamClose as (this: unknown) => void);
}

// Shared listeners and timer callbacks. An upstream stream's events count only while it is
// the controller's current attempt: an abandoned attempt's are echoes.

/** The app's request body ended: the upstream's timeout starts (attempt-deadline.ts). */
export function onAppBodyEnd(this: unknown): void {
  bodyEnded(attemptOf(this));
}

// flags: Node's frame flags, or the meshcar codec's endStream boolean (upstream-stream.ts)
// raw: the head as decoded, a flat list (both codecs give it)
function onUpstreamResponse(this: UpstreamStream, head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number | boolean, raw: readonly string[]): void {
  const attempt = attemptOf(this);
  if (attempt.upstream === this) upstreamResponse(attempt, this, head, flags, raw);
}

function onUpstreamTrailers(this: UpstreamStream, trailers: IncomingHttpHeaders): void {
  const attempt = attemptOf(this);
  if (attempt.upstream !== this) return;
  // Node's codec decodes trailers of any size within 256 fields (an HPACK bomb: head-list-bytes.ts);
  // the meshcar codec has refused longer ones already (not measured twice). The answer is cut,
  // not relayed whole
  if (attempt.pool.own === undefined && headObjectBytes(trailers) > UPSTREAM_MAX_HEAD_BYTES) {
    attempt.fail(new MeshcarError('bad_gateway', `the upstream's trailers are over ${UPSTREAM_MAX_HEAD_BYTES} bytes decoded`));
    return;
  }
  attempt.exchange.trailers(trailers);
  attempt.upstreamTrailers(trailers);
}

function onUpstreamError(this: UpstreamStream, err: Error): void {
  const attempt = attemptOf(this);
  if (attempt.upstream === this) streamError(attempt, this, err);
}

function onUpstreamClose(this: UpstreamStream): void {
  const attempt = attemptOf(this);
  if (attempt.upstream === this) streamClosed(attempt, this);
}

function onUpstreamIdle(this: UpstreamStream): void {
  const attempt = attemptOf(this);
  if (attempt.upstream === this) streamIdle(attempt);
}

export function onUpstreamWantTrailers(this: UpstreamStream): void {
  const attempt = attemptOf(this);
  const trailers = attempt.requestTrailers();
  // the app's to answer for: the stream is cancelled, not ended with trailers the upstream refuses
  const refused = upstreamTrailersProblem(trailers, this);
  if (refused !== undefined) attempt.fail(refused);
  else this.sendTrailers(trailers);
}

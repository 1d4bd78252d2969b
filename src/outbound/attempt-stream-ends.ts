// How an attempt's upstream stream ends when not by its answer's own end, for the attempt
// controller (attempt.ts): a reset or error (retried when safe, else upstream_reset), an answer
// head over our limits (bad_gateway), a stream quiet past the idle timeout (408 when it waits on
// the app's upload), and a stream that
// came too late to be wanted; and for each, whether the end is held against its endpoint
// (markCancelled: not). Separate from the controller's flow, as it is the judging of failures,
// not the carrying of a request. The stream's 'close' (streamClosed) is in attempt-answer.ts:
// it asks the protocol's part whether the answer was complete. Plain functions, called by the
// shared listeners of attempt-events.ts: no closure per request.

import { constants as h2 } from 'node:http2';
import { describeError, MeshcarError } from '../errors.js';
import type { Attempt } from './attempt.js';
import { safeToRepeat, tryRetry } from './attempt-retry.js';
import { calmedByPeer, retireSessionOf } from './calmed-sessions.js';
import { awaitingContinue } from './expect-continue.js';
import { probeSessionOf, silentSessionWhy } from './session-probe.js';
import { neverProcessed } from './goaway-refused.js';
import { UPSTREAM_MAX_HEAD_FIELDS } from './head-limits.js';
import { markAnswerCut, markCancelled, markPenalized } from './pool-counting.js';
import { refusedUnprocessed, upstreamReset, upstreamSilent, upstreamTimeout, type NotSentAgain } from './upstream-errors.js';
import { cancelStream, peerResetCode, resetItself, sessionWriteBacklog, type UpstreamStream } from './upstream-stream.js';

/**
 * A reset with ENHANCE_YOUR_CALM before the answer: our client refused the answer's head (over
 * 256 fields or the header list size; Node's codec and ours both reset it so), or the peer
 * calls our traffic abusive. Neither says the endpoint is failing: 502 bad_gateway, the stream
 * not held against its endpoint as a failure (a
 * latency penalty only: an endpoint answering everything so drew all the traffic, its cost
 * decaying to 0 without samples; review-up M1). A retry would meet the same head, so only the
 * peer's own reset (every one on Node's codec, which does not say) is retried when safe, on
 * another session: the peer's session takes no more streams (calmed-sessions.ts). Marked on 'error',
 * which both codecs emit for this code before 'close' (the pool judges the endpoint on 'close').
 * Only a reset of this stream itself: a session's GOAWAY(ENHANCE_YOUR_CALM) leaves that code
 * on every Node stream of the session, and those go the way of any lost stream (retried, or
 * upstream_reset; review-diff-s7 B3).
 */
export function headOverLimits(attempt: Attempt, up: UpstreamStream, err?: unknown): boolean {
  if (attempt.answered || up.rstCode !== h2.NGHTTP2_ENHANCE_YOUR_CALM || !resetItself(up, err)) return false;
  // no failure toward ejection, but a latency penalty: the balancer turns to other endpoints
  markPenalized(attempt.pool, up);
  // the peer's own reset: its session takes no new streams (a Node server out of session
  // memory refuses them all so), and a request safe to repeat goes to another (calmed-sessions.ts)
  if (calmedByPeer(up, err)) {
    retireSessionOf(attempt.pool, up);
    if (tryRetry(attempt, 'reset')) return true;
  }
  attempt.fail(new MeshcarError('bad_gateway', `the upstream's answer head is over the limits (${UPSTREAM_MAX_HEAD_FIELDS} fields, the header list size), or the stream was reset with ENHANCE_YOUR_CALM`));
  return true;
}

/** The current attempt's stream emitted 'error'. */
export function streamError(attempt: Attempt, up: UpstreamStream, err: Error): void {
  if (headOverLimits(attempt, up, err)) return;
  const unprocessed = !attempt.answered && neverProcessed(up);
  if (!attempt.answered && tryRetry(attempt, 'reset', undefined, unprocessed)) return;
  // the answer began and the endpoint broke it off (not our own cancel: fail() ran first then)
  if (attempt.answered && !attempt.failed) markAnswerCut(attempt.pool, up);
  const error = unprocessed ? refusedUnprocessed(attempt.endpointKey, up.rstCode === h2.NGHTTP2_REFUSED_STREAM) : cutError(attempt, up, err);
  attempt.fail(error, peerResetCode(up, err));
}

/** A stream cut: by its session's keepalive, which found the session silent, or by the upstream. */
function cutError(attempt: Attempt, up: UpstreamStream, err: Error): MeshcarError {
  const silent = silentSessionWhy(up);
  return silent !== undefined ? upstreamSilent(attempt.endpointKey, silent, notSentAgain(attempt)) : upstreamReset(attempt.endpointKey, describeError(err));
}

/** Why `attempt`, cut with a session its keepalive destroyed, was not sent again (its 502 or grpc-message says it). */
function notSentAgain(attempt: Attempt): NotSentAgain {
  if (attempt.answered) return 'answer_begun';
  return safeToRepeat(attempt) ? 'no_retry_left' : 'not_safe';
}

/** The current attempt's stream sent and received nothing for the idle timeout. */
export function streamIdle(attempt: Attempt): void {
  // a quiet stream whose head came (a watch, a server stream between messages) says nothing
  // about its endpoint's health: its cut is not scored against it (a gRPC answer cut before its
  // trailers would otherwise count as a 500 and quiet streams would get healthy endpoints ejected)
  const up = attempt.upstream;
  if (attempt.answered && up !== undefined && !up.closed) markCancelled(up);
  if (up !== undefined && !up.closed) probeSessionOf(up); // quiet, or on a session that no longer works (session-probe.ts)
  if (!attempt.answered && appUploadStalled(attempt, up)) {
    // the upstream waits for the rest of the body, which the app is not sending: the app's
    // fault, 408 as Envoy's stream idle timeout gives it, and nothing against the endpoint (an
    // app abandoning uploads got healthy endpoints ejected)
    if (up !== undefined && !up.closed) markCancelled(up);
    attempt.fail(new MeshcarError('request_timeout', `the app sent none of the rest of its request body for ${attempt.idleTimeoutMs} ms`));
    return;
  }
  attempt.fail(upstreamTimeout(attempt.endpointKey, attempt.idleTimeoutMs, 'sent or received nothing'));
}

/**
 * The app's upload is unfinished and waits on the app: every byte it sent has left for the
 * upstream (a byte still queued on the stream waits for flow-control window the upstream keeps
 * shut, one queued on the session's socket for a path that takes no more, and then the upstream
 * is the one stalling, however few bytes), and the app is not waiting for a 100 Continue before
 * it sends the rest (one that sent body bytes without waiting is not).
 */
function appUploadStalled(attempt: Attempt, up: UpstreamStream | undefined): boolean {
  if (attempt.bodyDone || attempt.appBody.readableEnded || up === undefined) return false;
  if (up.writableLength > 0 || sessionWriteBacklog(up) > 0) return false;
  return !(awaitingContinue(up) && attempt.exchange.bytesIn === 0);
}

/**
 * A stream opened for an attempt no longer wanted (the app went away, or the deadline passed
 * while it was opened): it never carried the request, so its end says nothing about the endpoint.
 */
export function discardStream(up: UpstreamStream): void {
  markCancelled(up);
  // its head may promise a body: a reset alone, never an empty END_STREAM (a whole empty
  // request to the upstream); the AbortError it emits is expected
  up.on('error', ignoreError);
  cancelStream(up);
}

function ignoreError(): void {}

// The upstream's answer, for the attempt controller (attempt.ts): its head (a 503 or 429 is
// retried when that is safe, attempt-retry.ts; else it is written to the app through the
// protocol's part and the retry's outcome reported) and how the current stream's end ends it:
// closed with the answer complete, cut mid-body (a reset, or an end Node pushed itself before
// END_STREAM: early-end.ts), or closed before any answer (retried when safe, else
// upstream_reset). A stream's other ends (error, idle, a head over our limits) are judged in
// attempt-stream-ends.ts. Plain functions of the controller, called by the shared listeners of
// attempt-events.ts and the forwarders' end listeners: no closure per request.

import { constants as h2, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { MeshcarError } from '../errors.js';
import { effectiveStatus } from '../http/status.js';
import { endedEarly, wholeAtLength } from '../http/early-end.js';
import { headListBytes } from '../http/head-list-bytes.js';
import type { Attempt } from './attempt.js';
import { dropKeptBody, reportRetry, tryRetry } from './attempt-retry.js';
import { headOverLimits } from './attempt-stream-ends.js';
import { neverProcessed } from './goaway-refused.js';
import { UPSTREAM_MAX_HEAD_BYTES } from './head-limits.js';
import { markAnswerCut, markPenalized } from './pool-counting.js';
import { refusedUnprocessed, upstreamReset } from './upstream-errors.js';
import { peerResetCode, responseEnds, wasReset, type UpstreamStream } from './upstream-stream.js';

/** The current attempt's stream brought the response head. */
export function upstreamResponse(attempt: Attempt, up: UpstreamStream, head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number | boolean, raw: readonly string[]): void {
  if (attempt.answered) return;
  const status = Number(head[':status']);
  // Node's codec hands on any three digits; 600-999 is no HTTP status (an HTTP/1.1 app would
  // get `HTTP/1.1 600 unknown`): refused as the meshcar codec and the inbound refuse it
  if (!(status >= 200 && status <= 599)) {
    attempt.fail(new MeshcarError('bad_gateway', `the upstream answered with status ${String(head[':status'])}, not an HTTP status of 200-599`));
    return;
  }
  // Node's codec decodes any number of bytes within 256 fields (head-limits.ts); the meshcar
  // codec has refused a longer one already, so its answers are not measured twice (own: its pool)
  if (attempt.pool.own === undefined && headListBytes(raw) > UPSTREAM_MAX_HEAD_BYTES) {
    markPenalized(attempt.pool, up);
    attempt.fail(new MeshcarError('bad_gateway', `the upstream's answer head is over ${UPSTREAM_MAX_HEAD_BYTES} bytes decoded`));
    return;
  }
  // judged by what it stands for: the remote sidecar answers a gRPC caller's errors as 200
  const judged = effectiveStatus(status, head);
  if ((judged === 503 || judged === 429) && tryRetry(attempt, judged === 503 ? 'status_503' : 'status_429', head['retry-after'])) return;
  attempt.timer?.cancel();
  attempt.timer = undefined;
  if (!attempt.writeHead(status, head, flags, raw)) return;
  attempt.answered = true;
  attempt.answerLength = wholeAtLength(head);
  dropKeptBody(attempt);
  attempt.exchange.answered(judged, head, responseEnds(flags));
  reportRetry(attempt, judged >= 500 || judged === 429 ? 'failure' : 'success');
  attempt.relayBody(up, flags);
}

/**
 * Whether the body ended cut: a reset code, or an end Node pushed itself before END_STREAM
 * (early-end.ts) on a body short of its Content-Length. A body that is all its Content-Length
 * says, closed by RST_STREAM(NO_ERROR) before its END_STREAM could come, is whole: what an
 * endpoint's reset of an upload it had answered made of the answer when the reset overtook the
 * END_STREAM still queued behind it (nghttp2 sends control frames first: Node's own servers,
 * meshcar's node-codec inbound before its fix); curl takes it as whole too.
 */
export function bodyCut(attempt: Attempt, up: UpstreamStream): boolean {
  if (wasReset(up.rstCode)) {
    // the error the stream recorded: a Node stream's own reset passes its code on, as in streamError
    attempt.fail(upstreamReset(attempt.endpointKey, `code ${up.rstCode}`), peerResetCode(up, up.errored));
    return true;
  }
  if (!endedEarly(up) || attempt.answerLength === attempt.exchange.bytesOut) return false;
  attempt.fail(upstreamReset(attempt.endpointKey, 'the stream closed before the end of its body (RST_STREAM NO_ERROR)'));
  return true;
}

/** The current attempt's stream closed. */
export function streamClosed(attempt: Attempt, up: UpstreamStream): void {
  if (headOverLimits(attempt, up)) return;
  const unprocessed = !attempt.answered && neverProcessed(up);
  if (!attempt.answered && tryRetry(attempt, 'reset', undefined, unprocessed)) return;
  if (unprocessed) attempt.fail(refusedUnprocessed(attempt.endpointKey, up.rstCode === h2.NGHTTP2_REFUSED_STREAM));
  else if (!attempt.answered) attempt.fail(upstreamReset(attempt.endpointKey, `stream closed with code ${up.rstCode ?? 'unknown'} before a response`));
  // closed with the answer unfinished: cut, whatever the code (the meshcar codec ends no body
  // it did not get whole; NO_ERROR mid-body would otherwise leave the app's answer open)
  else if (!attempt.answerComplete()) {
    // the endpoint broke its answer off (our own cut ran fail() first: nothing more then)
    if (!attempt.failed) markAnswerCut(attempt.pool, up);
    if (!bodyCut(attempt, up)) attempt.fail(upstreamReset(attempt.endpointKey, `stream closed with code ${up.rstCode ?? 'unknown'} before the end of its body`));
  } else attempt.keepCompleteAnswer();
}

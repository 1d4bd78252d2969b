// An app's h2c request whose head says `content-length: 0` but leaves its stream open (no
// END_STREAM) is held here until the stream ends, then sent upstream whole (forward-h2c.ts).
// Forwarded at once, its head reached the far app as a complete request (an HTTP/1.1 app reads
// `Content-Length: 0` as the whole of it and acts) before the DATA that makes it malformed
// came (RFC 9113 §8.1.1: an intermediary MUST NOT forward a malformed request); Node's server
// then reset the app's stream, and the far app had acted on a request nobody got an answer to.
// Held, any DATA is refused by Node's server (RST_STREAM PROTOCOL_ERROR) and nothing leaves.
// The wait holds only the app's own stream (no upstream stream exists yet), bounded as an
// upload that stops is: the app's own deadline (grpc-timeout, x-request-timeout) from the
// request's arrival, 504, and the upstream's idleTimeout while the stream is quiet, 408 (the
// app's fault). Unbounded, an app that never ended it held its record, the connection's idle
// close and the drain until it closed its connection. The upstream's own timeout starts once
// the request is sent, as for any request. A body with a non-zero length goes on as it comes,
// as in Envoy: its excess is refused by the same check, but not before the declared bytes went on.

import type { ServerHttp2Stream } from 'node:http2';
import { MeshcarError } from '../errors.js';
import type { Attempt } from './attempt.js';
import { attemptOf } from './attempt-events.js';
import { armDeadline } from './attempt-deadline.js';
import { appDeadlineMs } from './retry.js';
import { wasReset } from './upstream-stream.js';

/** What the hold needs of the h2c attempt (besides Attempt.over()). */
export interface HeldRequest {
  /** The stream ended cleanly: send the request, its body empty (with the trailers that came). */
  sendHeld(): void;
}

/** A content-length of zero (nghttp2 has checked the digits; leading zeros are still zero). */
export function declaresEmptyBody(contentLength: string | undefined): boolean {
  return contentLength !== undefined && /^0+$/.test(contentLength);
}

/** Waits for the end of `stream` (bound to `attempt`), reading it so that END_STREAM is seen; bounded as above. */
export function holdUntilEnd(stream: ServerHttp2Stream, attempt: Attempt): void {
  attempt.appDeadlineMs = appDeadlineMs(attempt.reqHeaders['grpc-timeout'], attempt.reqHeaders['x-request-timeout']);
  armDeadline(attempt, false);
  if (attempt.idleTimeoutMs > 0) stream.setTimeout(attempt.idleTimeoutMs, onHeldQuiet);
  stream.on('end', onHeldEnd);
  stream.resume();
}

function onHeldEnd(this: ServerHttp2Stream): void {
  this.setTimeout(0);
  // Node ends a reset stream's readable side like a finished one: only a clean end is sent on
  if (wasReset(this.rstCode) || this.aborted) return;
  const held = attemptOf<Attempt & HeldRequest>(this);
  if (!held.over()) held.sendHeld();
}

function onHeldQuiet(this: ServerHttp2Stream): void {
  this.setTimeout(0);
  const held = attemptOf<Attempt>(this);
  if (held.over()) return;
  held.fail(new MeshcarError('request_timeout', `the app left its request (content-length: 0) unended for ${held.idleTimeoutMs} ms`));
}

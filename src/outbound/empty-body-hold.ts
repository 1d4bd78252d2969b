// An app's h2c request whose head says `content-length: 0` but leaves its stream open (no
// END_STREAM) is held here until the stream ends, then sent upstream whole (forward-h2c.ts).
// Forwarded at once, its head reached the far app as a complete request (an HTTP/1.1 app reads
// `Content-Length: 0` as the whole of it and acts) before the DATA that makes it malformed
// came (RFC 9113 §8.1.1: an intermediary MUST NOT forward a malformed request); Node's server
// then reset the app's stream, and the far app had acted on a request nobody got an answer to.
// Held, any DATA is refused by Node's server (RST_STREAM PROTOCOL_ERROR) and nothing leaves.
// The wait holds only the app's own stream: no upstream stream exists yet, and its deadline and
// idle timeout start once it is sent. A body with a non-zero length goes on as it comes, as in
// Envoy: its excess is refused by the same check, but not before the declared bytes went on.

import type { ServerHttp2Stream } from 'node:http2';
import type { Attempt } from './attempt.js';
import { attemptOf } from './attempt-events.js';
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

/** Waits for the end of `stream` (bound to its attempt), reading it so that END_STREAM is seen. */
export function holdUntilEnd(stream: ServerHttp2Stream): void {
  stream.on('end', onHeldEnd);
  stream.resume();
}

function onHeldEnd(this: ServerHttp2Stream): void {
  // Node ends a reset stream's readable side like a finished one: only a clean end is sent on
  if (wasReset(this.rstCode) || this.aborted) return;
  const held = attemptOf<Attempt & HeldRequest>(this);
  if (!held.over()) held.sendHeld();
}

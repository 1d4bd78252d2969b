// An app's h2c upload still going when its answer is complete (forward-h2c.ts). An upstream
// that answered in full, then neither read the rest nor reset its stream (a meshcar inbound
// resets with NO_ERROR, RFC 9113 §8.1; other HTTP/2 servers need not), held the app's stream,
// its record and an upstream stream slot until the upstream's idleTimeout (5 min): the app's
// upload waited behind flow control. As on the HTTP/1.1 side (forward-http1-upload.ts), an
// upload that moves no byte for UPLOAD_STALL_MS while the upstream holds it paused is given up:
// the upstream stream is cancelled and the rest read and dropped, so the app's stream completes.
// A timer only for such uploads, never on the ordinary request path.

import type { ServerHttp2Stream } from 'node:http2';
import type { Attempt } from './attempt.js';
import { UPLOAD_STALL_MS } from './forward-http1-upload.js';

/** The h2c attempt (forward-h2c.ts) as the watch sees it. */
export interface H2cUploadAttempt extends Attempt {
  readonly stream: ServerHttp2Stream;
  /** While an upload outlives the complete answer: its progress, checked every UPLOAD_STALL_MS. */
  uploadTimer: NodeJS.Timeout | undefined;
  uploadSeen: number;
}

/** The answer is complete and the app's upload is not: watched until it ends or stalls. */
export function watchH2cUpload(attempt: H2cUploadAttempt): void {
  if (attempt.stream.readableEnded || attempt.stream.closed || attempt.uploadTimer !== undefined) return;
  attempt.uploadSeen = attempt.exchange.bytesIn;
  attempt.uploadTimer = setTimeout(checkH2cUpload, UPLOAD_STALL_MS, attempt);
}

function checkH2cUpload(attempt: H2cUploadAttempt): void {
  attempt.uploadTimer = undefined;
  const stream = attempt.stream;
  if (stream.readableEnded || stream.closed) return;
  const up = attempt.upstream;
  // the upstream let go of it: keepCompleteAnswer reads and drops the rest
  if (up === undefined || up.closed || up.destroyed) return;
  const moved = attempt.exchange.bytesIn !== attempt.uploadSeen;
  attempt.uploadSeen = attempt.exchange.bytesIn;
  // paused by the pipe (the upstream's window is full) and nothing came: the upstream does not want it
  if (!moved && stream.readableFlowing === false) {
    attempt.cancelUpstream();
    attempt.keepCompleteAnswer();
    return;
  }
  attempt.uploadTimer = setTimeout(checkH2cUpload, UPLOAD_STALL_MS, attempt);
}

/** The app's stream closed: no more watching. */
export function stopWatchingH2cUpload(attempt: H2cUploadAttempt): void {
  clearTimeout(attempt.uploadTimer);
  attempt.uploadTimer = undefined;
}

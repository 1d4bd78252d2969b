// An app's h2c upload still on its way to the upstream after its exchange is over (the
// upstream answered early and reads on, the app ended its body): in flight until its stream
// closes, so a drain waits for it, and cancelled, as the app's leaving cancels, once the
// upstream has taken none of it for the idle timeout. Separate from attempt.ts, whose
// appClosed() hands such an upload here: this is only what becomes of it afterwards.

import type { Activity } from './activity.js';
import { markCancelled } from './pool-counting.js';
import { cancelStream, type UpstreamStream } from './upstream-stream.js';

const kFlushMark = Symbol('meshcar.outbound.flushMark');
type FlushingUpload = UpstreamStream & { [kFlushMark]: number };

/**
 * `up`'s request is ended but not all sent. What is left is at most a stream buffer's worth
 * (the app's body ended: the pipe had it all). The stream's own idle timer is no bound here:
 * Node's codec re-arms it while the session sends anything, our PINGs included, and the count
 * stayed up for ever (a review). `idleMs` 0: no idle timeout configured, and none here either.
 */
export function leaveWhenFlushed(activity: Activity, up: UpstreamStream, idleMs: number): void {
  const flushing = up as FlushingUpload;
  flushing[kFlushMark] = flushMark(up);
  activity.leaveOnClose(flushing, idleMs, cancelUnlessMoving);
}

/**
 * Grows as the upload goes out: the meshcar codec counts the bytes it sent; Node's stream, what
 * it still holds less (`bufferSize`: its own buffer and what nghttp2 has not sent yet, which a
 * shut window keeps there), which moves only as each written piece (up to 16 KiB) is all sent:
 * there an upstream slower than a piece per idle timeout is taken for stopped.
 */
function flushMark(up: UpstreamStream): number {
  const sent = (up as { bytesSent?: number }).bytesSent;
  return sent ?? -((up as { bufferSize?: number }).bufferSize ?? up.writableLength);
}

/**
 * At each idle timeout: still moving (more of it sent than at the last look) is waited for
 * again; stopped, it is cancelled, marked so: not held against the endpoint, whose answer came
 * whole (Node's codec reports the cancel as a stream error, which counted as a cut answer).
 */
function cancelUnlessMoving(up: FlushingUpload): boolean {
  const mark = flushMark(up);
  if (mark > up[kFlushMark]) {
    up[kFlushMark] = mark;
    return false;
  }
  markCancelled(up);
  cancelStream(up);
  return true;
}

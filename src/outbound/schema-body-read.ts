// The enforce-mode read of an app's JSON body on the outbound (schema-check.ts), before the
// request goes upstream. No attempt exists yet, so none of its bounds cover this phase: the
// upstream's idleTimeout and timeout start in the forwarder, and the app listener sets no
// request timeout (bodies stream as long as they move). An app that sent part of a body and
// went quiet was held for ever, and held the bytes it had sent against the spec's maxBuffered
// budget, so every other JSON call to that upstream was 503 `overloaded`.
//
// Here the read is bounded as the forwarder bounds a streaming upload: by the upstream's
// idleTimeout, counted from the last byte that came (no byte for that long: the app stopped
// sending, 408 `request_timeout`; schema-check.ts gives the bytes back first). The read is also
// counted in flight (drain waits for it, idleForMs sees the app busy), from the head's arrival
// until the forwarder takes over (it counts the request from then) or the app is answered.
// One entry per read in a deadline queue shared by all (src/http/deadline-queue.ts), polled
// as the inbound's idle timeout is: a byte costs one clock read, not a timer re-armed.

import { performance } from 'node:perf_hooks';
import { DeadlineQueue, type Deadline } from '../http/deadline-queue.js';
import type { Activity } from './activity.js';

export class BodyRead {
  private lastByteMs = performance.now();
  private deadline: Deadline<BodyRead> | undefined = undefined;
  private over = false;

  /** `stalled` is called (once) when no byte came for `idleMs`; `idleMs` 0: no bound. */
  constructor(
    private readonly activity: Activity,
    readonly idleMs: number,
    readonly stalled: (read: BodyRead) => void,
  ) {
    activity.enter();
    if (idleMs > 0) this.deadline = QUIET_READS.add(this, idleMs);
  }

  /** Body bytes came: the idle clock starts again. */
  moved(): void {
    this.lastByteMs = performance.now();
  }

  /**
   * Ends the read (the body came whole, was refused, or the app went away): the clock stops,
   * and `then` runs (forward the request, answer the app) before the read leaves the in-flight
   * count, so a drain never sees zero between this phase and the forwarder's. False (nothing
   * run) when it was over already.
   */
  finish(then?: () => void): boolean {
    if (this.over) return false;
    this.over = true;
    this.deadline?.cancel();
    this.deadline = undefined;
    try {
      then?.();
    } finally {
      this.activity.leave();
    }
    return true;
  }

  /** @internal the queue's poll: stalled, or asleep for the rest of the idle time. */
  poll(): void {
    this.deadline = undefined;
    if (this.over) return;
    const quietMs = performance.now() - this.lastByteMs;
    if (quietMs >= this.idleMs) this.stalled(this);
    else this.deadline = QUIET_READS.add(this, this.idleMs - quietMs);
  }
}

function poll(read: BodyRead): void {
  read.poll();
}

// one timer per duration for all reads, not one per request (src/http/deadline-queue.ts)
const QUIET_READS = new DeadlineQueue<BodyRead>(poll);

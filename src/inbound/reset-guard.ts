// Rapid-reset protection (CVE-2023-44487): an HTTP/2 caller that opens streams and resets
// them at once makes the sidecar start (and cancel) a request to the app for each, at no cost
// to itself, and never hits the concurrent-stream limit. Every session counts the streams its
// caller reset prematurely (before their response head, within a second of opening: as
// Envoy's premature-reset check, src/h2/limits.ts), and the streams that ended otherwise (a
// cancelled watch or download that had its answer among them), in fixed 10-second windows. When the resets pass the limit and outnumber the completed streams (as
// Envoy's premature-reset check does: a busy, well-behaved peer cancelling a few timed-out
// requests never trips it), the session is closed with GOAWAY ENHANCE_YOUR_CALM.

import type { Http2Session } from 'node:http2';
import { isPrematureReset } from '../h2/limits.js';

export const RESET_WINDOW_MS = 10_000;

const kGuard = Symbol('meshcar.inbound.resetGuard');

export class ResetGuard {
  private windowStartMs: number;
  private resets = 0;
  private completed = 0;
  /** Closed for abuse: later counts change nothing. */
  tripped = false;

  constructor(
    private readonly limit: number,
    private readonly onAbuse: (guard: ResetGuard, resets: number, completed: number) => void,
    nowMs = performance.now(),
  ) {
    this.windowStartMs = nowMs;
  }

  private roll(nowMs: number): void {
    if (nowMs - this.windowStartMs >= RESET_WINDOW_MS || nowMs < this.windowStartMs) {
      this.windowStartMs = nowMs;
      this.resets = 0;
      this.completed = 0;
    }
  }

  /**
   * The caller reset a stream before its response ended (`answered`: its head was sent;
   * `ageMs`: since it opened): counted when premature, else an ordinary end.
   */
  streamReset(answered: boolean, ageMs: number, nowMs = performance.now()): void {
    if (!isPrematureReset(answered, ageMs)) return this.streamCompleted(nowMs);
    if (this.tripped) return;
    this.roll(nowMs);
    this.resets++;
    if (this.resets > this.limit && this.resets > this.completed) {
      this.tripped = true;
      this.onAbuse(this, this.resets, this.completed);
    }
  }

  /** A stream ended without a reset by the caller. */
  streamCompleted(nowMs = performance.now()): void {
    if (this.tripped) return;
    this.roll(nowMs);
    this.completed++;
  }
}

export function attachGuard(session: Http2Session, guard: ResetGuard): void {
  (session as unknown as { [kGuard]?: ResetGuard })[kGuard] = guard;
}

export function guardOf(session: Http2Session | undefined): ResetGuard | undefined {
  return (session as unknown as { [kGuard]?: ResetGuard } | undefined)?.[kGuard];
}

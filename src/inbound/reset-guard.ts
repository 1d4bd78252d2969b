// Rapid-reset protection (CVE-2023-44487): an HTTP/2 caller that opens streams and resets
// them at once makes the sidecar start (and cancel) a request to the app for each, at no cost
// to itself, and never hits the concurrent-stream limit. Every session counts the streams its
// caller reset prematurely (before their response head, within a second of opening: as
// Envoy's premature-reset check, src/h2/limits.ts), and the streams that ended otherwise (a
// cancelled watch or download that had its answer among them), in fixed 10-second windows. When the resets pass the limit and outnumber the completed streams (as
// Envoy's premature-reset check does: a busy, well-behaved peer cancelling a few timed-out
// requests never trips it), the session is closed with GOAWAY ENHANCE_YOUR_CALM.
// Streams nghttp2 resets itself for the caller's protocol errors (MadeYouReset, CVE-2025-8671:
// a body shorter than its content-length, DATA after END_STREAM) count too, always, as the
// meshcar codec counts its own stream errors; the close is then named for whichever kind the
// resets mostly were (rapid_reset or made_you_reset), as the meshcar codec names it. Node does
// not say who sent a stream's RST_STREAM, only its code: the codes of a protocol violation
// (provokedResetCode) are taken as nghttp2's, the rest (clients cancel with CANCEL or NO_ERROR)
// as the caller's. A caller resetting with PROTOCOL_ERROR itself only moves its own label.

import type { Http2Session, Http2Stream } from 'node:http2';
import { deadlineResetsOver, peerResetKind } from '../h2/limits.js';

export const RESET_WINDOW_MS = 10_000;

export type ResetAbuse = 'rapid_reset' | 'made_you_reset';

// RFC 9113 error codes nghttp2 resets a stream with for the peer's violation of a stream rule
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const STREAM_CLOSED = 0x5;
const FRAME_SIZE_ERROR = 0x6;

/** Whether a stream's RST_STREAM code is one nghttp2 answers a caller's protocol error with. */
export function provokedResetCode(code: number | undefined): boolean {
  return code === PROTOCOL_ERROR || code === FLOW_CONTROL_ERROR || code === STREAM_CLOSED || code === FRAME_SIZE_ERROR;
}

const kGuard = Symbol('meshcar.inbound.resetGuard');

export class ResetGuard {
  private windowStartMs: number;
  private resets = 0;
  /** Of `resets`, those nghttp2 made for the caller's protocol errors. */
  private provoked = 0;
  private completed = 0;
  /** Resets at their streams' deadlines (peerResetKind), in a budget of their own. */
  private atDeadline = 0;
  /** Closed for abuse: later counts change nothing. */
  tripped = false;

  constructor(
    private readonly limit: number,
    private readonly onAbuse: (guard: ResetGuard, resets: number, completed: number, reason: ResetAbuse) => void,
    nowMs = performance.now(),
  ) {
    this.windowStartMs = nowMs;
  }

  private roll(nowMs: number): void {
    if (nowMs - this.windowStartMs >= RESET_WINDOW_MS || nowMs < this.windowStartMs) {
      this.windowStartMs = nowMs;
      this.resets = 0;
      this.provoked = 0;
      this.completed = 0;
      this.atDeadline = 0;
    }
  }

  /**
   * The caller reset a stream before its response ended (`answered`: its head was sent;
   * `ageMs`: since it opened): counted when premature, else an ordinary end.
   */
  streamReset(answered: boolean, ageMs: number, nowMs = performance.now(), deadlineMs?: number): void {
    const kind = peerResetKind(answered, ageMs, deadlineMs);
    if (kind === undefined) return this.streamCompleted(nowMs);
    if (kind === 'premature') return this.count(false, nowMs);
    // at the stream's own deadline: a budget of its own, larger (deadlineResetsOver)
    if (this.tripped) return;
    this.roll(nowMs);
    this.atDeadline++;
    if (deadlineResetsOver(this.atDeadline, this.limit, this.completed)) {
      this.tripped = true;
      this.onAbuse(this, this.atDeadline, this.completed, 'rapid_reset');
    }
  }

  /** nghttp2 reset a stream for the caller's protocol error (MadeYouReset): counted whatever its age. */
  streamProvoked(nowMs = performance.now()): void {
    this.count(true, nowMs);
  }

  private count(provoked: boolean, nowMs: number): void {
    if (this.tripped) return;
    this.roll(nowMs);
    this.resets++;
    if (provoked) this.provoked++;
    if (this.resets > this.limit && this.resets > this.completed) {
      this.tripped = true;
      this.onAbuse(this, this.resets, this.completed, this.provoked > this.resets - this.provoked ? 'made_you_reset' : 'rapid_reset');
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

/**
 * A session's 'stream' listener (http2.codec node): counts a stream Node hands over already
 * destroyed. Node emits 'stream' in a later tick than nghttp2 read the HEADERS; a sidecar that
 * was busy finds a burst waiting and nghttp2 goes through all of it first, so a stream it reset
 * meanwhile (or the caller did) comes already ended, its 'aborted' and 'close' unheard, and the
 * guard counted none of them: 240 streams with short bodies read in one go closed nothing (the
 * session stayed open until its idle timeout), the same read frame by frame closed it. Counted
 * here as those events count them ('aborted' is emitted as the stream closes, so never both).
 */
export function countStreamEndedUnheard(this: Http2Session, stream: Http2Stream): void {
  if (!stream.destroyed) return;
  const guard = guardOf(this);
  const code = stream.rstCode;
  if (guard === undefined || code === undefined) return;
  if (provokedResetCode(code)) guard.streamProvoked();
  else guard.streamReset(false, 0);
}

// The connection's books of its streams: which are open (H2Connection.streams), which ids are
// still idle (by id, as nghttp2 and Go's x/net/http2 tell idle from closed), what the peer may
// still send on streams we closed before its END_STREAM (late frames: ignored, not errors), and
// stream errors the peer caused (RST_STREAM, counted, and too many of them is MadeYouReset: a
// connection error). Forgetting a stream may let a graceful close finish.

import { ErrorCode } from './constants.js';
import type { H2Connection } from './connection.js';
import { ConnectionFault, type StreamErrorReason } from './errors.js';
import type { H2Stream } from './stream.js';
import { responseHeadOverPeer } from './peer-limits.js';
import { receiveReset } from './stream-receive-side.js';

/**
 * Header blocks and END_STREAM frames a stream cut short may still carry toward us: 1xx
 * heads (100-continue, 103), the final head and trailers (or an empty DATA with END_STREAM).
 */
const LATE_ENDS_PER_STREAM = 5;

/**
 * What the peer may still send on closed streams without it being an error (RFC 9113 §5.1:
 * frames on a stream we reset were maybe sent before our RST_STREAM arrived, and are ignored).
 * Kept as two sums, not per stream id, so nothing grows with the streams we close and nothing
 * is forgotten early: every stream we close before the peer's END_STREAM adds what that
 * stream's window still allowed (DATA bytes) and LATE_ENDS_PER_STREAM header blocks or
 * END_STREAM frames. Late frames spend them; past them, a frame on a closed stream is treated
 * as before (DATA: RST_STREAM STREAM_CLOSED, counted by the MadeYouReset budget; HEADERS: a
 * connection error). So ignoring costs at most what those streams could have carried anyway.
 * A stream reset for overrunning its window is the exception: the peer sent past the window it
 * had, so the rest of that burst is already on the wire beyond anything the window says. That
 * stream alone (the latest one so reset: one slot, nothing kept per stream) may still carry one
 * stream window more, as nghttp2 and Go ignore such frames; the reset that granted it was counted.
 */
export class LateFrameAllowance {
  private bytes = 0;
  private ends = 0;
  /** The stream last reset for a flow-control overrun (0: none), and what it may still carry. */
  private overrunStream = 0;
  private overrunBytes = 0;

  /** A stream the peer has not ended is closed (reset, refused, after GOAWAY): `window` bytes it may still send. */
  expect(window: number): void {
    this.bytes += Math.max(0, window);
    this.ends += LATE_ENDS_PER_STREAM;
  }

  /** `streamId` was reset for overrunning its window: the rest of the peer's burst on it, up to `window` bytes, is ignored. */
  overrun(streamId: number, window: number): void {
    this.overrunStream = streamId;
    this.overrunBytes = window;
  }

  /** DATA on a closed stream: true if it is within what closed streams may still carry (spent). */
  data(streamId: number, flowLength: number, endStream: boolean): boolean {
    if (streamId === this.overrunStream) {
      if (flowLength <= this.overrunBytes) {
        this.overrunBytes -= flowLength;
        // the burst's end: nothing more may follow on it
        if (endStream) this.overrunStream = 0;
        return true;
      }
      this.overrunStream = 0;
    }
    if (flowLength > this.bytes || (endStream && this.ends === 0)) return false;
    this.bytes -= flowLength;
    if (endStream) this.ends--;
    return true;
  }

  /** A header block on a closed stream: true if within the allowance (spent). */
  headers(): boolean {
    if (this.ends === 0) return false;
    this.ends--;
    return true;
  }
}

/** Removes a stream from the books (closed or reset); a graceful close may now finish. */
export function forgetStream(c: H2Connection, stream: H2Stream): void {
  if (c.streams.get(stream.id) === stream) c.streams.delete(stream.id);
  c.maybeFinish();
}

/** We close a stream the peer has not ended: its frames already on the way are ignored (up to what it could carry). */
export function expectLateFrames(c: H2Connection, stream: H2Stream): void {
  if (!stream.remoteClosed) c.lateFrames.expect(stream.recvWindow.available);
}

/**
 * A stream id of the peer's parity above any it opened (counting those ignored after our final
 * GOAWAY), or of ours we have not opened. Any other id that is not open is closed (RFC 9113
 * §5.1.1: opening an id closes every idle one below it).
 */
export function isIdle(c: H2Connection, streamId: number): boolean {
  const peerParity = (streamId & 1) === (c.isServer ? 1 : 0);
  return peerParity ? streamId > c.highestPeerStreamId : streamId >= c.nextStreamId;
}

/**
 * A stream error caused by the peer: RST_STREAM with `code`, counted, and the stream (if we
 * have it) ended with that error. Too many of them is MadeYouReset: the connection goes.
 */
export function streamError(c: H2Connection, streamId: number, code: number, reason: StreamErrorReason, countAsProvoked = true): void {
  const stream = c.streams.get(streamId);
  c.writer.rstStream(streamId, code);
  if (stream) expectLateFrames(c, stream);
  c.observer.streamError?.(reason, code);
  if (stream) {
    forgetStream(c, stream);
    receiveReset(stream, code, reason);
  }
  if (countAsProvoked) {
    const abuse = c.resetBudget.reset(false, performance.now());
    if (abuse) throw new ConnectionFault(abuse, ErrorCode.ENHANCE_YOUR_CALM, 'the peer keeps making us reset streams');
  }
}

/**
 * The 431 for a request over the header limits, on a stream never opened: the user's answer
 * (connection option headersTooLargeAnswer) when its body fits the peer's windows as they
 * stand (the stream's initial one, the connection's), so no flow control is owed later; else
 * a bare 431; a bare one too when its fields would be over the peer's header list size.
 */
export function tooLargeAnswer(c: H2Connection, streamId: number, headRequest: boolean): void {
  const answer = c.headersTooLargeAnswer;
  const n = answer === undefined ? 0 : answer.body.length;
  // the answer to a HEAD is the head alone (RFC 9110 §9.3.2): DATA after it is a content-length mismatch to the peer
  // the fields only within the peer's SETTINGS_MAX_HEADER_LIST_SIZE, as every other head
  // (peer-limits.ts): over it, the peer refuses the stream, or ends the connection
  const fits = answer !== undefined && responseHeadOverPeer(c, [':status', '431', ...answer.fields]) === undefined;
  const sendsBody = fits && !headRequest && n > 0 && n <= c.sendWindow.available && n <= c.remoteSettings.initialWindowSize && n <= c.remoteSettings.maxFrameSize;
  const head = sendsBody || (headRequest && fits) ? [':status', '431', ...answer!.fields] : [':status', '431'];
  c.writer.headers(streamId, c.encoder.encode(head), !sendsBody, c.remoteSettings.maxFrameSize);
  if (!sendsBody) return;
  c.sendWindow.available -= n;
  c.writer.data(streamId, answer.body, true);
}

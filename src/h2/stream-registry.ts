// The connection's books of its streams: which are open (H2Connection.streams), which ids it
// reset lately (the peer's frames already on the way for them are ignored, not errors), which
// ids are still idle, and stream errors the peer caused (RST_STREAM, counted, and too many of
// them is MadeYouReset: a connection error). Forgetting a stream may let a graceful close finish.

import { ErrorCode } from './constants.js';
import type { H2Connection } from './connection.js';
import { ConnectionFault, type StreamErrorReason } from './errors.js';
import type { H2Stream } from './stream.js';
import { receiveReset } from './stream-receive-side.js';

/** Streams we reset whose late frames are ignored rather than treated as errors. */
const RECENT_RESETS = 128;

/** Removes a stream from the books (closed or reset); a graceful close may now finish. */
export function forgetStream(c: H2Connection, stream: H2Stream): void {
  if (c.streams.get(stream.id) === stream) c.streams.delete(stream.id);
  c.maybeFinish();
}

export function rememberReset(c: H2Connection, streamId: number): void {
  const recent = c.recentResets;
  if (recent.size >= RECENT_RESETS) recent.delete(recent.values().next().value as number);
  recent.add(streamId);
}

export function wasReset(c: H2Connection, streamId: number): boolean {
  return c.recentResets.has(streamId);
}

/** A stream id of the peer's parity it has not opened yet, or of ours we have not. */
export function isIdle(c: H2Connection, streamId: number): boolean {
  const peerParity = (streamId & 1) === (c.isServer ? 1 : 0);
  return peerParity ? streamId > c.lastPeerStreamId : streamId >= c.nextStreamId;
}

/**
 * A stream error caused by the peer: RST_STREAM with `code`, counted, and the stream (if we
 * have it) ended with that error. Too many of them is MadeYouReset: the connection goes.
 */
export function streamError(c: H2Connection, streamId: number, code: number, reason: StreamErrorReason, countAsProvoked = true): void {
  const stream = c.streams.get(streamId);
  c.writer.rstStream(streamId, code);
  rememberReset(c, streamId);
  c.observer.streamError?.(reason, code);
  if (stream) {
    forgetStream(c, stream);
    receiveReset(stream, code, reason);
  }
  if (countAsProvoked) {
    const abuse = c.resetBudget.reset(false, Date.now());
    if (abuse) throw new ConnectionFault(abuse, ErrorCode.ENHANCE_YOUR_CALM, 'the peer keeps making us reset streams');
  }
}

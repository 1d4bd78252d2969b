// Our side of one stream: the head we send, the body framed as DATA within the stream's and
// the connection's send windows (called by the connection's send loop, send-scheduler.ts),
// the end (END_STREAM, or 'wantTrailers' first), and when the stream is complete: both sides
// ended, or answered in full while nobody reads the request body. Plain functions of the
// H2Stream, so no object is made per stream or per frame for them.

import { ErrorCode } from './constants.js';
import { COPY_LIMIT } from './frame-writer.js';
import type { H2Stream } from './stream.js';
import type { BatchWaiter } from './batch-waiters.js';

const EMPTY = Buffer.alloc(0);

/** Sends the head (a server's respond(), a client's request() through the connection). */
export function sendHead(stream: H2Stream, flat: string[], endStream: boolean): void {
  stream.headersSent = true;
  // not sent: the stream was reset instead (above the peer's header list size)
  if (!stream.host.sendHeaderBlock(stream, flat, endStream)) return;
  if (endStream) {
    stream.localClosed = true;
    stream.end();
    checkClosed(stream);
  }
}

/** Has a chunk or the end to send. */
export function hasOutput(stream: H2Stream): boolean {
  // once 'wantTrailers' went out the end is sendTrailers()'s: the stream is parked till then
  return (stream.chunk !== null || (stream.finalCb !== null && !stream.trailersWanted)) && !stream.localClosed;
}

/** Has body bytes (not only the end) to send. */
export function hasData(stream: H2Stream): boolean {
  return stream.chunk !== null;
}

/**
 * Called by the connection's send loop: frames at most `max` bytes of the current chunk
 * (the connection's window and the peer's max frame size, already bounded by the caller).
 * Returns the payload bytes framed (0 if the stream window is shut).
 */
export function sendData(stream: H2Stream, max: number): number {
  const chunk = stream.chunk;
  if (chunk === null) {
    if (hasOutput(stream)) finish(stream);
    return 0;
  }
  const n = Math.min(max, stream.sendWindow.available, chunk.length - stream.chunkOffset);
  if (n <= 0) {
    stream.windowBlocked = true;
    return 0;
  }
  const payload = stream.chunkOffset === 0 && n === chunk.length ? chunk : chunk.subarray(stream.chunkOffset, stream.chunkOffset + n);
  stream.chunkOffset += n;
  stream.sendWindow.available -= n;
  stream.bytesSent += n;
  if (stream.chunkOffset < chunk.length) {
    if (n > COPY_LIMIT) {
      // held by reference too: should the stream be reset before the rest is framed, the
      // chunk's callback still waits for this part to leave (dropOutput)
      stream.heldBatches++;
      stream.host.frameHeldData(stream, payload, (stream.partWaiter ??= partWaiterOf(stream)));
    } else stream.host.frameData(stream.id, payload, false);
    return n;
  }
  const cb = stream.chunkCb!;
  stream.chunk = null;
  stream.chunkCb = null;
  if (chunk.length > COPY_LIMIT) {
    // held by reference until its batch leaves: the writer may reuse the buffer once its
    // callback ran, so that waits for the socket (batchWritten)
    stream.sentCb = cb;
    stream.sentLength = chunk.length;
    stream.heldBatches++;
    stream.host.frameHeldData(stream, payload, stream);
  } else {
    stream.host.frameData(stream.id, payload, false); // copied
    cb(); // may call _write (next chunk) or _final synchronously
  }
  return n;
}

/**
 * Just before the batch holding the stream's last DATA frame is written: if its writer ended
 * since (end() after the chunk whose callback waits, nothing else buffered, no trailers to
 * wait for), END_STREAM goes on that frame and the stream's side is ended here; _final, which
 * Node calls after the callback, then only completes it. Without this a body ending with a
 * chunk held by reference would cost an empty END_STREAM frame of its own, in a later write.
 */
export function endsWithBatch(stream: H2Stream): boolean {
  if (stream.localClosed || stream.chunk !== null || stream.waitForTrailers || !stream.writableEnded || stream.destroyed) return false;
  if (stream.writableLength !== stream.sentLength) return false; // more is buffered behind the chunk
  stream.localClosed = true;
  return true;
}

function finish(stream: H2Stream): void {
  if (stream.waitForTrailers) {
    // ends when the user calls sendTrailers(), in the listener or later: parked until then
    stream.waitForTrailers = false;
    stream.trailersWanted = true;
    stream.emit('wantTrailers');
    return;
  }
  stream.host.frameData(stream.id, EMPTY, true);
  localEnded(stream);
}

/** Our END_STREAM went out (with the last DATA or the trailers): end()'s callback runs. */
export function localEnded(stream: H2Stream): void {
  stream.localClosed = true;
  const cb = stream.finalCb;
  stream.finalCb = null;
  cb?.();
  checkClosed(stream);
}

/** After either side ended: a stream done both ways completes; see below for one nobody reads. */
export function checkClosed(stream: H2Stream): void {
  if (!stream.localClosed || stream.protocolClosed) return;
  // a server's user who never started reading the request body: nobody will (Node's rule too)
  const unread = stream.host.isServer && stream.readableFlowing === null;
  if (stream.remoteClosed) {
    stream.protocolClosed = true;
    stream.host.streamCompleted(stream);
    // drop the unread body so the readable ends and the stream closes
    if (unread) stream.resume();
    return;
  }
  if (unread) {
    // answered in full before the request body ended, and nobody reads that body: ask the
    // client to stop sending it (RFC 9113 §8.1) rather than hold the stream open for it
    stream.rstCode = ErrorCode.NO_ERROR;
    stream.host.resetStream(stream, ErrorCode.NO_ERROR);
    // answered in full: a completed stream for the rapid-reset budget, as the node codec counts it
    stream.host.streamCompleted(stream);
    stream.destroy();
  }
}

/** Nothing more will be sent (reset, lost, destroyed): pending write and end callbacks run now. */
export function dropOutput(stream: H2Stream): void {
  const cb = stream.chunkCb;
  stream.chunk = null;
  stream.chunkCb = null;
  // parts of the chunk framed by reference may still wait in a batch: the writer may reuse
  // its buffer only once they left (batchWritten), even though the rest is never sent
  if (cb !== null && stream.heldBatches > 0) stream.sentCb = cb;
  else cb?.();
  const fin = stream.finalCb;
  stream.finalCb = null;
  fin?.();
}

/** The waiter of a DATA frame that is not its chunk's last: END_STREAM never goes on it. */
function partWaiterOf(stream: H2Stream): BatchWaiter {
  return { endsWithBatch: () => false, batchWritten: () => stream.batchWritten() };
}

// What a stream holds of the peer's body before its consumer gets it, so that the memory it
// costs follows the bytes received, whatever the frame sizes and socket-read boundaries a peer
// chooses. A DATA payload is a view into the socket chunk it arrived in: pushed into the
// readable as it is, each one costs a Buffer object and a list entry (~130 bytes of heap for a
// 1-byte frame) and pins the whole chunk (16 KiB of TLS record for one byte). So:
//   - a small payload (under 1 KiB) waits for the end of the socket read that brought it
//     (releaseAfterRead): then what that read brought for the stream goes to a consumer that
//     waits as one exact-size copy (many tiny frames, one piece per read), or into the tail;
//   - a large payload goes straight to a consumer that keeps up (the readable is empty, or Node
//     waits for a push: a read(n) that found too little), as a view when it is at least half of
//     its chunk, else as a copy (ownBytes);
//   - when the consumer is behind, everything is held here (large views kept, small ones copied
//     into the stream's tail buffer: 1 KiB, doubling to 16 KiB, each its own allocation) and goes into the readable, in order and in a few large pieces, when it reads (the
//     stream's _read and read()), and all of it at END_STREAM.
// A piece released from the tail is a view of it; the tail stays open for the next bytes, so
// pieces share it and tails hold at most about twice the bytes. Held bytes are not yet taken,
// so their credit waits like the readable's (stream.ts counts them in readableLength). Go's
// x/net/http2 copies every payload into a pipe of pooled 1-16 KiB chunks; Node's core http2
// makes a Buffer per DATA frame.

import type { H2Stream } from './stream.js';

/** A payload this long that is at least half of its chunk is kept as a view, not copied. */
const MIN_VIEW = 1024;
const MIN_TAIL = 1024;
const MAX_TAIL = 16_384;

/** Whether a payload is worth keeping as a view of its socket chunk: large, and most of that chunk. */
function viewWorthKeeping(data: Buffer): boolean {
  return data.length >= MIN_VIEW && data.length * 2 >= data.buffer.byteLength;
}

/** Whether a payload is coalesced into the tail rather than handed over as its own piece. */
export function isSmallPayload(data: Buffer): boolean {
  return data.length < MIN_VIEW;
}

/**
 * The payload as the readable may keep it: itself when it is most of its socket chunk, else a
 * copy, so a consumer that keeps chunks never pins a socket chunk for a few bytes.
 */
export function ownBytes(data: Buffer): Buffer {
  return viewWorthKeeping(data) ? data : Buffer.from(data);
}

/** The consumer has taken everything, or waits for a push (Node's needReadable). */
export function consumerWaiting(stream: H2Stream): boolean {
  return stream.readableLength === stream.heldBytes || (stream as unknown as { _readableState: { needReadable: boolean } })._readableState.needReadable;
}

/**
 * A small payload: kept (a view of its socket chunk, alive for this read anyway) until the read
 * ends; counted as held, so the credit arithmetic sees it unread.
 */
export function holdUntilReadEnds(stream: H2Stream, data: Buffer): void {
  (stream.readPending ??= []).push(data);
  stream.readPendingBytes += data.length;
  stream.heldBytes += data.length;
}

/**
 * The small payloads of this read, in order before anything that follows: to a consumer that
 * waits, as one exact-size copy (pooled when small, as Buffer.from is); else into the tail.
 */
export function settleReadPending(stream: H2Stream): void {
  const pending = stream.readPending;
  if (pending === null) return;
  const bytes = stream.readPendingBytes;
  stream.readPending = null;
  stream.readPendingBytes = 0;
  stream.heldBytes -= bytes;
  if (stream.heldBytes === 0 && consumerWaiting(stream)) {
    stream.push(pending.length === 1 ? Buffer.from(pending[0]!) : Buffer.concat(pending, bytes));
    return;
  }
  for (const piece of pending) holdData(stream, piece);
}

/** Takes a payload to hold: the consumer is behind. */
export function holdData(stream: H2Stream, data: Buffer): void {
  stream.heldBytes += data.length;
  if (viewWorthKeeping(data)) {
    sealTail(stream);
    (stream.held ??= []).push(data);
    return;
  }
  let at = 0;
  while (at < data.length) {
    let tail = stream.tail;
    if (tail === null || stream.tailFill === tail.length) {
      // twice the tail just filled, or what is left to copy: what tails leave unused stays
      // within twice what they hold, even when a view seals one early, again and again
      const size = Math.min(MAX_TAIL, Math.max(MIN_TAIL, data.length - at, tail === null ? 0 : 2 * tail.length));
      sealTail(stream);
      tail = stream.tail = Buffer.allocUnsafeSlow(size);
    }
    const n = data.copy(tail, stream.tailFill, at);
    stream.tailFill += n;
    at += n;
  }
}

/** Pushes everything held into the readable (the consumer reads, a read ended, or the body ended). */
export function releaseHeld(stream: H2Stream): void {
  if (stream.heldBytes === stream.readPendingBytes) return; // (this read's small payloads wait for its end)
  const held = stream.held;
  stream.held = null;
  // counted down piece by piece: a 'data' listener that reads during the loop sees what is
  // still held, so its credit is not returned early
  if (held !== null) {
    for (const piece of held) {
      if (stream.destroyed) return; // by a 'data' listener
      stream.heldBytes -= piece.length;
      stream.push(piece);
    }
  }
  const tail = stream.tail;
  if (tail !== null && stream.tailFill > stream.tailStart && !stream.destroyed) {
    // a view of what the tail holds; the tail stays open for the next bytes
    const piece = tail.subarray(stream.tailStart, stream.tailFill);
    stream.tailStart = stream.tailFill;
    stream.heldBytes -= piece.length;
    stream.push(piece);
  }
}

/** The consumer reads: what is held follows once the readable runs low, or asks for more than it has. */
export function releaseIfLow(stream: H2Stream, wanted: number): void {
  const inReadable = stream.readableLength - stream.heldBytes;
  if (inReadable < stream.readableHighWaterMark || wanted > inReadable) releaseHeld(stream);
}

/** A socket read ended: what it brought is handed over in one piece if the consumer waits for it. */
export function releaseAfterRead(stream: H2Stream): void {
  stream.releaseQueued = false;
  if (stream.destroyed) return;
  settleReadPending(stream);
  if (stream.heldBytes > 0 && consumerWaiting(stream)) releaseHeld(stream);
}

/** Forgets what is held (the stream is destroyed); its credit is the caller's to return. */
export function dropHeld(stream: H2Stream): void {
  stream.readPending = null;
  stream.readPendingBytes = 0;
  stream.held = null;
  stream.heldBytes = 0;
  stream.tail = null;
  stream.tailFill = 0;
  stream.tailStart = 0;
}

/** Moves what the tail holds and has not released into the held pieces, and closes the tail. */
function sealTail(stream: H2Stream): void {
  const tail = stream.tail;
  if (tail === null) return;
  if (stream.tailFill > stream.tailStart) (stream.held ??= []).push(stream.tailStart === 0 && stream.tailFill === tail.length ? tail : tail.subarray(stream.tailStart, stream.tailFill));
  stream.tail = null;
  stream.tailFill = 0;
  stream.tailStart = 0;
}

// What a stream holds of the peer's body while its consumer is behind, so that the memory it
// costs follows the bytes received, whatever the frame sizes and socket-read boundaries a
// peer chooses. A DATA payload is a view into the socket chunk it arrived in: pushed into the
// readable as it is, each one costs a Buffer object and a list entry (~130 bytes of heap for a
// 1-byte frame) and pins the whole chunk (16 KiB of TLS record for one byte). So:
//   - a payload goes straight into the readable while it is below its high-water mark (a
//     flowing consumer takes it at once; a read(n) waiting for more gets its push), as a view
//     only when it is at least 1 KiB and half of its chunk, else as a copy (ownBytes);
//   - at the mark (the consumer is behind) it is held here: copied into a tail buffer that coalesces small payloads
//     (1 KiB, doubling to 16 KiB, each its own allocation, never a slice of Node's shared pool),
//     or kept as a view when it is at least 1 KiB and at least half of its chunk;
//   - what is held goes into the readable, in order and in a few large pieces, when the
//     consumer reads (the stream's _read and read()), and all of it at END_STREAM.
// Held bytes are not yet taken, so their credit waits like the readable's (stream.ts counts
// them in readableLength). Go's x/net/http2 copies every payload into a pipe of pooled 1-16 KiB
// chunks; Node's core http2 copies every payload out of nghttp2; the copy here happens only
// when the consumer is behind, where it is not the bottleneck.

import type { H2Stream } from './stream.js';

/** A payload this long that is at least half of its chunk is kept as a view, not copied. */
const MIN_VIEW = 1024;
const MIN_TAIL = 1024;
const MAX_TAIL = 16_384;

/** Whether a payload is worth keeping as a view of its socket chunk: large, and most of that chunk. */
function viewWorthKeeping(data: Buffer): boolean {
  return data.length >= MIN_VIEW && data.length * 2 >= data.buffer.byteLength;
}

/**
 * The payload as the readable may keep it: itself when it is most of its socket chunk, else a
 * copy (a small one from Node's shared pool, whose slabs many pieces share), so a consumer that
 * keeps chunks never pins a socket chunk (16 KiB of TLS record) for a byte.
 */
export function ownBytes(data: Buffer): Buffer {
  return viewWorthKeeping(data) ? data : Buffer.from(data);
}

/** Takes a payload the readable is not ready for (its consumer is behind: at its high-water mark). */
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

/** Pushes everything held into the readable (the consumer reads, or the body ended). */
export function releaseHeld(stream: H2Stream): void {
  if (stream.heldBytes === 0) return;
  sealTail(stream);
  const held = stream.held!;
  stream.held = null;
  // counted down piece by piece: a 'data' listener that reads during the loop sees what is
  // still held, so its credit is not returned early
  for (const piece of held) {
    if (stream.destroyed) return; // by a 'data' listener
    stream.heldBytes -= piece.length;
    stream.push(piece);
  }
}

/** The consumer reads: what is held follows once the readable runs low, or asks for more than it has. */
export function releaseIfLow(stream: H2Stream, wanted: number): void {
  const inReadable = stream.readableLength - stream.heldBytes;
  if (inReadable < stream.readableHighWaterMark || wanted > inReadable) releaseHeld(stream);
}

/** Forgets what is held (the stream is destroyed); its credit is the caller's to return. */
export function dropHeld(stream: H2Stream): void {
  stream.held = null;
  stream.heldBytes = 0;
  stream.tail = null;
  stream.tailFill = 0;
}

function sealTail(stream: H2Stream): void {
  const tail = stream.tail;
  if (tail === null) return;
  (stream.held ??= []).push(stream.tailFill === tail.length ? tail : tail.subarray(0, stream.tailFill));
  stream.tail = null;
  stream.tailFill = 0;
}

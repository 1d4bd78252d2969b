// Serializes frames for one connection and hands them to the socket in one write per
// event-loop turn: every frame produced while handling a socket read, a timer or a user's
// calls in the same turn is appended to a batch that leaves with setImmediate (or at once when
// the batch grows past FLUSH_BYTES). Small frames are packed into a shared slab; large DATA
// payloads are not copied but written beside their frame header (cork/uncork → one writev):
// the write callbacks of those run only once the socket has taken the batch (batch-waiters.ts),
// as Node's Writable contract lets a writer reuse its buffer after its callback.

import { BatchWaiters, type BatchWaiter } from './batch-waiters.js';
import { FRAME_HEADER_LENGTH, Flag, FrameType } from './constants.js';

const SLAB_SIZE = 16_384;
/** DATA payloads up to this size are copied into the slab (cheaper than another iovec). */
export const COPY_LIMIT = 1_024;
/** A batch this large is written without waiting for the end of the turn. */
const FLUSH_BYTES = 256 * 1024;

export interface FrameSink {
  /** `cb` runs once the socket is done with the chunk (also when it was destroyed first). */
  write(chunk: Buffer, cb?: () => void): boolean;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

export class FrameWriter {
  private slab = Buffer.allocUnsafe(SLAB_SIZE);
  /** The part of the slab already appended to `out` ends at `cut`; frames are written at `pos`. */
  private pos = 0;
  private cut = 0;
  private out: Buffer[] = [];
  /** The last DATA frame's header, while it is still ours to change (until the next flush). */
  private lastDataSlab: Buffer | null = null;
  private lastDataAt = 0;
  private lastDataStream = 0;
  private pendingBytes = 0;
  private scheduled = false;
  /** Frames written to the socket so far (for tests and batching checks). */
  writes = 0;
  private readonly flushNow = (): void => {
    this.scheduled = false;
    this.flush();
  };
  /** DATA payloads held by reference whose writers wait for their batch to leave. */
  private readonly waiters = new BatchWaiters();

  constructor(private readonly sink: FrameSink) {}

  /** Bytes framed but not yet handed to the socket. */
  get pending(): number {
    return this.pendingBytes + (this.pos - this.cut);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.slab.length) return;
    this.cutSlab();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
    this.pos = 0;
    this.cut = 0;
  }

  private cutSlab(): void {
    if (this.pos > this.cut) {
      this.out.push(this.slab.subarray(this.cut, this.pos));
      this.pendingBytes += this.pos - this.cut;
      this.cut = this.pos;
    }
  }

  private header(length: number, type: number, flags: number, streamId: number): void {
    const b = this.slab;
    let p = this.pos;
    b[p++] = length >>> 16;
    b[p++] = (length >>> 8) & 0xff;
    b[p++] = length & 0xff;
    b[p++] = type;
    b[p++] = flags;
    b.writeUInt32BE(streamId, p);
    this.pos = p + 4;
  }

  private schedule(): void {
    if (this.pending >= FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Writes the batch now (one socket.write, or one corked writev). */
  flush(): void {
    this.cutSlab();
    this.lastDataSlab = null;
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    this.pendingBytes = 0;
    // what is left of the slab stays ours; a nearly full one is replaced so the next frame does not split
    if (this.slab.length - this.pos < 256) {
      this.slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.pos = this.cut = 0;
    }
    if (this.sink.destroyed) return this.waiters.release();
    this.writes++;
    // END_STREAM may still be set on held DATA frames here (their headers are in the slab)
    const done = this.waiters.handOff();
    if (out.length === 1) {
      this.sink.write(out[0]!, done);
      return;
    }
    this.sink.cork();
    const last = out.length - 1;
    for (let i = 0; i < last; i++) this.sink.write(out[i]!);
    this.sink.write(out[last]!, done);
    this.sink.uncork();
  }

  /** Drops what was not written yet (the connection is being destroyed). */
  discard(): void {
    this.out = [];
    this.pendingBytes = 0;
    this.cut = this.pos;
    this.waiters.release();
  }

  raw(bytes: Buffer): void {
    this.reserve(bytes.length);
    bytes.copy(this.slab, this.pos);
    this.pos += bytes.length;
    this.schedule();
  }

  /**
   * Sets END_STREAM on the stream's last DATA frame if it is the last DATA frame framed and
   * not yet written: end() after write() then costs no extra empty frame.
   */
  markEndStream(streamId: number): boolean {
    if (this.lastDataSlab === null || this.lastDataStream !== streamId) return false;
    this.lastDataSlab[this.lastDataAt + 4]! |= Flag.END_STREAM;
    this.lastDataSlab = null;
    return true;
  }

  /**
   * A DATA frame. With `waiter`, the payload (held by reference if large) stays the caller's
   * until the socket has taken this batch: the waiter is told then, and asked just before the
   * batch is written whether END_STREAM may be set on this frame.
   */
  data(streamId: number, payload: Buffer, endStream: boolean, waiter?: BatchWaiter): void {
    const n = payload.length;
    const flags = endStream ? Flag.END_STREAM : 0;
    if (n <= COPY_LIMIT) {
      this.reserve(FRAME_HEADER_LENGTH + n);
      this.noteData(streamId);
      this.header(n, FrameType.DATA, flags, streamId);
      payload.copy(this.slab, this.pos);
      this.pos += n;
    } else {
      this.reserve(FRAME_HEADER_LENGTH);
      this.noteData(streamId);
      this.header(n, FrameType.DATA, flags, streamId);
      this.cutSlab();
      this.out.push(payload);
      this.pendingBytes += n;
    }
    if (waiter !== undefined) this.waiters.add(waiter, this.lastDataSlab!, this.lastDataAt);
    this.schedule();
  }

  private noteData(streamId: number): void {
    this.lastDataSlab = this.slab;
    this.lastDataAt = this.pos;
    this.lastDataStream = streamId;
  }

  /** A header block as HEADERS plus as many CONTINUATION frames as `maxFrameSize` requires. */
  headers(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number): void {
    this.headerBlock(FrameType.HEADERS, streamId, block, endStream ? Flag.END_STREAM : 0, maxFrameSize, undefined);
  }

  pushPromise(streamId: number, promisedId: number, block: Buffer, maxFrameSize: number): void {
    this.headerBlock(FrameType.PUSH_PROMISE, streamId, block, 0, maxFrameSize, promisedId);
  }

  private headerBlock(type: number, streamId: number, block: Buffer, flags: number, maxFrameSize: number, promisedId: number | undefined): void {
    const prefix = promisedId === undefined ? 0 : 4;
    let first = Math.min(block.length, maxFrameSize - prefix);
    let last = first === block.length;
    this.reserve(FRAME_HEADER_LENGTH + prefix + first);
    this.header(prefix + first, type, flags | (last ? Flag.END_HEADERS : 0), streamId);
    if (promisedId !== undefined) {
      this.slab.writeUInt32BE(promisedId, this.pos);
      this.pos += 4;
    }
    block.copy(this.slab, this.pos, 0, first);
    this.pos += first;
    let at = first;
    while (!last) {
      first = Math.min(block.length - at, maxFrameSize);
      last = at + first === block.length;
      this.reserve(FRAME_HEADER_LENGTH + first);
      this.header(first, FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, streamId);
      block.copy(this.slab, this.pos, at, at + first);
      this.pos += first;
      at += first;
    }
    this.schedule();
  }

  /** Any frame as given (tests, and frames the codec never sends itself). */
  frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    this.reserve(FRAME_HEADER_LENGTH + payload.length);
    this.header(payload.length, type, flags, streamId);
    payload.copy(this.slab, this.pos);
    this.pos += payload.length;
    this.schedule();
  }

  /** `params`: [id, value, id, value, ...]. */
  settings(params: readonly number[]): void {
    const length = (params.length / 2) * 6;
    this.reserve(FRAME_HEADER_LENGTH + length);
    this.header(length, FrameType.SETTINGS, 0, 0);
    for (let i = 0; i < params.length; i += 2) {
      this.slab.writeUInt16BE(params[i]!, this.pos);
      this.slab.writeUInt32BE(params[i + 1]!, this.pos + 2);
      this.pos += 6;
    }
    this.schedule();
  }

  settingsAck(): void {
    this.reserve(FRAME_HEADER_LENGTH);
    this.header(0, FrameType.SETTINGS, Flag.ACK, 0);
    this.schedule();
  }

  ping(payload: Buffer, ack: boolean): void {
    this.frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
  }

  goaway(lastStreamId: number, code: number, debug?: Buffer): void {
    const n = debug?.length ?? 0;
    this.reserve(FRAME_HEADER_LENGTH + 8 + n);
    this.header(8 + n, FrameType.GOAWAY, 0, 0);
    this.slab.writeUInt32BE(lastStreamId, this.pos);
    this.slab.writeUInt32BE(code, this.pos + 4);
    this.pos += 8;
    if (debug) {
      debug.copy(this.slab, this.pos);
      this.pos += n;
    }
    this.schedule();
  }

  rstStream(streamId: number, code: number): void {
    this.reserve(FRAME_HEADER_LENGTH + 4);
    this.header(4, FrameType.RST_STREAM, 0, streamId);
    this.slab.writeUInt32BE(code, this.pos);
    this.pos += 4;
    this.schedule();
  }

  windowUpdate(streamId: number, increment: number): void {
    this.reserve(FRAME_HEADER_LENGTH + 4);
    this.header(4, FrameType.WINDOW_UPDATE, 0, streamId);
    this.slab.writeUInt32BE(increment, this.pos);
    this.pos += 4;
    this.schedule();
  }

  priority(streamId: number, dependency: number, weight: number, exclusive: boolean): void {
    this.reserve(FRAME_HEADER_LENGTH + 5);
    this.header(5, FrameType.PRIORITY, 0, streamId);
    this.slab.writeUInt32BE((dependency | (exclusive ? 0x80000000 : 0)) >>> 0, this.pos);
    this.slab[this.pos + 4] = weight;
    this.pos += 5;
    this.schedule();
  }
}

// Incremental HTTP/2 frame parser over socket chunks (RFC 9113 §4 and §6). It checks what can
// be checked from one frame alone (lengths, stream id zero or not, padding, the max frame size,
// that a header block's CONTINUATION frames follow without anything in between) and calls one
// typed handler method per frame with views into the socket's chunks, so no object is made per
// frame. Meaning (stream states, flow control, settings) is the connection's job.
//
// Errors are thrown as ConnectionFault (the connection sends GOAWAY); the only frame-level
// stream error is a PRIORITY frame of the wrong length (RFC 9113 §6.3). A frame's body is
// buffered only when it spans chunks, and never beyond the max frame size we announced;
// frames of unknown types are skipped without buffering.

import { ErrorCode, FRAME_HEADER_LENGTH, Flag, FrameType } from './constants.js';
import { ConnectionFault, protocolFault } from './errors.js';

export interface FrameHandler {
  /** `data` excludes padding; `flowLength` is the whole payload, which counts against the windows. */
  onData(streamId: number, data: Buffer, endStream: boolean, flowLength: number): void;
  /** `dependency` is -1 when the frame has no priority fields. */
  onHeaders(streamId: number, fragment: Buffer, endStream: boolean, endHeaders: boolean, dependency: number): void;
  onContinuation(streamId: number, fragment: Buffer, endHeaders: boolean): void;
  onPriority(streamId: number, dependency: number): void;
  onRstStream(streamId: number, code: number): void;
  /** `params` is a multiple of 6 bytes (id: u16, value: u32). */
  onSettings(ack: boolean, params: Buffer): void;
  onPushPromise(streamId: number, promisedId: number, fragment: Buffer, endHeaders: boolean): void;
  onPing(ack: boolean, payload: Buffer): void;
  onGoaway(lastStreamId: number, code: number, debug: Buffer): void;
  onWindowUpdate(streamId: number, increment: number): void;
  /** A stream error found while framing (PRIORITY of the wrong size). */
  onStreamFrameError(streamId: number, code: number): void;
}

function frameSizeFault(message: string): ConnectionFault {
  return new ConnectionFault('frame_size_error', ErrorCode.FRAME_SIZE_ERROR, message);
}

export class FrameReader {
  /** SETTINGS_MAX_FRAME_SIZE as we announced it: larger frames are a connection error. */
  maxFrameSize: number;
  /** The 9-byte header, when it spans chunks. */
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  private headerFill = 0;
  /** The frame being assembled across chunks (its body only), or null. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** Bytes of an ignored (unknown type) frame still to skip. */
  private skip = 0;
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  /** The stream whose header block is open (HEADERS or PUSH_PROMISE without END_HEADERS), else 0. */
  private continuationOf = 0;
  /** RFC 9113 §3.4: each side's preface ends with a SETTINGS frame, which must come first. */
  private sawFirstFrame = false;
  /** Bytes of the client preface still to check (server role), 0 when done. */
  private prefaceLeft: number;
  private readonly preface: Buffer | undefined;
  /** The connection ended: whatever is left of the chunk being read, and later chunks, are dropped. */
  private stopped = false;

  constructor(
    private readonly handler: FrameHandler,
    options: { maxFrameSize: number; preface?: Buffer },
  ) {
    this.maxFrameSize = options.maxFrameSize;
    this.preface = options.preface;
    this.prefaceLeft = options.preface?.length ?? 0;
  }

  /** Feeds one chunk; throws ConnectionFault on a connection error (then feed nothing more). */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    if (this.prefaceLeft > 0) pos = this.checkPreface(chunk);
    // a handler may end the connection (a user callback destroying it): stop at that frame
    while (pos < end && !this.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.body !== null) {
        const n = Math.min(this.length - this.bodyFill, end - pos);
        chunk.copy(this.body, this.bodyFill, pos, pos + n);
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill === this.length) {
          const body = this.body;
          this.body = null;
          this.dispatch(body, 0);
        }
        continue;
      }
      // the header: straight from the chunk when it holds all 9 bytes
      if (this.headerFill === 0 && end - pos >= FRAME_HEADER_LENGTH) {
        this.parseHeader(chunk, pos);
        pos += FRAME_HEADER_LENGTH;
      } else {
        const n = Math.min(FRAME_HEADER_LENGTH - this.headerFill, end - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + n);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < FRAME_HEADER_LENGTH) break;
        this.headerFill = 0;
        this.parseHeader(this.header, 0);
      }
      if (this.type > FrameType.CONTINUATION) {
        // unknown type: ignored (RFC 9113 §4.1); inside a header block parseHeader refused it
        this.skip = this.length;
        continue;
      }
      if (end - pos >= this.length) {
        this.dispatch(chunk, pos);
        pos += this.length;
      } else {
        this.body = Buffer.allocUnsafe(this.length);
        this.bodyFill = 0;
      }
    }
  }

  /** No frame is dispatched after this, not even the rest of the chunk being read. */
  stop(): void {
    this.stopped = true;
  }

  private checkPreface(chunk: Buffer): number {
    const preface = this.preface as Buffer;
    const from = preface.length - this.prefaceLeft;
    const n = Math.min(this.prefaceLeft, chunk.length);
    if (chunk.compare(preface, from, from + n, 0, n) !== 0) throw new ConnectionFault('bad_preface', ErrorCode.PROTOCOL_ERROR, 'the client connection preface is wrong');
    this.prefaceLeft -= n;
    return n;
  }

  private parseHeader(b: Buffer, at: number): void {
    this.length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
    this.type = b[at + 3]!;
    this.flags = b[at + 4]!;
    this.streamId = b.readUInt32BE(at + 5) & 0x7fffffff;
    if (this.length > this.maxFrameSize) throw frameSizeFault(`a frame of ${this.length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
    // a SETTINGS ACK is no preface: the preface's SETTINGS is one to acknowledge (RFC 9113 §3.4)
    if (!this.sawFirstFrame && (this.type !== FrameType.SETTINGS || (this.flags & Flag.ACK) !== 0)) throw protocolFault('the peer’s connection preface does not start with SETTINGS', 'bad_preface');
    this.sawFirstFrame = true;
    if (this.continuationOf !== 0 && (this.type !== FrameType.CONTINUATION || this.streamId !== this.continuationOf)) {
      throw protocolFault(`a header block of stream ${this.continuationOf} was interrupted by another frame`);
    }
  }

  /**
   * The end of a padded frame's payload without its padding. `fixed`: the bytes of fields
   * between the pad length and the data or field block (HEADERS' priority, PUSH_PROMISE's
   * promised id): a frame too short for them is a FRAME_SIZE_ERROR (RFC 9113 §4.2), padding
   * that reaches into them a PROTOCOL_ERROR (§6.1, §6.2, §6.6: it exceeds what remains).
   */
  private unpad(b: Buffer, start: number, end: number, fixed: number): number {
    if (end - start < 1 + fixed) throw frameSizeFault('a padded frame too short for its pad length and fixed fields');
    const padLength = b[start]!;
    const room = end - start - 1 - fixed;
    if (padLength > room) throw protocolFault(`padding of ${padLength} bytes where the frame leaves ${room} for its content`);
    return end - padLength;
  }

  private dispatch(b: Buffer, at: number): void {
    const { length, flags, streamId } = this;
    const h = this.handler;
    let start = at;
    let end = at + length;
    switch (this.type) {
      case FrameType.DATA: {
        if (streamId === 0) throw protocolFault('DATA on stream 0');
        if (flags & Flag.PADDED) {
          end = this.unpad(b, start, end, 0);
          start += 1;
        }
        h.onData(streamId, b.subarray(start, end), (flags & Flag.END_STREAM) !== 0, length);
        return;
      }
      case FrameType.HEADERS: {
        if (streamId === 0) throw protocolFault('HEADERS on stream 0');
        if (flags & Flag.PADDED) {
          end = this.unpad(b, start, end, flags & Flag.PRIORITY ? 5 : 0);
          start += 1;
        }
        let dependency = -1;
        if (flags & Flag.PRIORITY) {
          if (end - start < 5) throw frameSizeFault('HEADERS too short for its priority fields');
          dependency = b.readUInt32BE(start) & 0x7fffffff;
          start += 5;
        }
        const endHeaders = (flags & Flag.END_HEADERS) !== 0;
        if (!endHeaders) this.continuationOf = streamId;
        h.onHeaders(streamId, b.subarray(start, end), (flags & Flag.END_STREAM) !== 0, endHeaders, dependency);
        return;
      }
      case FrameType.CONTINUATION: {
        if (this.continuationOf === 0) throw protocolFault('CONTINUATION without an open header block');
        const endHeaders = (flags & Flag.END_HEADERS) !== 0;
        if (endHeaders) this.continuationOf = 0;
        h.onContinuation(streamId, b.subarray(start, end), endHeaders);
        return;
      }
      case FrameType.PRIORITY:
        if (streamId === 0) throw protocolFault('PRIORITY on stream 0');
        if (length !== 5) return h.onStreamFrameError(streamId, ErrorCode.FRAME_SIZE_ERROR);
        h.onPriority(streamId, b.readUInt32BE(start) & 0x7fffffff);
        return;
      case FrameType.RST_STREAM:
        if (length !== 4) throw frameSizeFault('RST_STREAM not 4 bytes long');
        if (streamId === 0) throw protocolFault('RST_STREAM on stream 0');
        h.onRstStream(streamId, b.readUInt32BE(start));
        return;
      case FrameType.SETTINGS: {
        if (streamId !== 0) throw protocolFault('SETTINGS on a stream');
        const ack = (flags & Flag.ACK) !== 0;
        if (ack && length !== 0) throw frameSizeFault('SETTINGS ACK with a payload');
        if (length % 6 !== 0) throw frameSizeFault('SETTINGS length not a multiple of 6');
        h.onSettings(ack, b.subarray(start, end));
        return;
      }
      case FrameType.PUSH_PROMISE: {
        if (streamId === 0) throw protocolFault('PUSH_PROMISE on stream 0');
        if (flags & Flag.PADDED) {
          end = this.unpad(b, start, end, 4);
          start += 1;
        }
        if (end - start < 4) throw frameSizeFault('PUSH_PROMISE too short');
        const promised = b.readUInt32BE(start) & 0x7fffffff;
        const endHeaders = (flags & Flag.END_HEADERS) !== 0;
        if (!endHeaders) this.continuationOf = streamId;
        h.onPushPromise(streamId, promised, b.subarray(start + 4, end), endHeaders);
        return;
      }
      case FrameType.PING:
        if (length !== 8) throw frameSizeFault('PING not 8 bytes long');
        if (streamId !== 0) throw protocolFault('PING on a stream');
        h.onPing((flags & Flag.ACK) !== 0, b.subarray(start, end));
        return;
      case FrameType.GOAWAY:
        if (streamId !== 0) throw protocolFault('GOAWAY on a stream');
        if (length < 8) throw frameSizeFault('GOAWAY shorter than 8 bytes');
        h.onGoaway(b.readUInt32BE(start) & 0x7fffffff, b.readUInt32BE(start + 4), b.subarray(start + 8, end));
        return;
      case FrameType.WINDOW_UPDATE:
        if (length !== 4) throw frameSizeFault('WINDOW_UPDATE not 4 bytes long');
        h.onWindowUpdate(streamId, b.readUInt32BE(start) & 0x7fffffff);
        return;
    }
  }
}

// Assembles one header block from a HEADERS (or PUSH_PROMISE) frame and its CONTINUATION
// frames, bounded: the total compressed bytes and the number of CONTINUATION frames are
// checked as each frame arrives, before anything is kept, so a CONTINUATION flood (the 2024
// CVE class: endless frames without END_HEADERS) costs the peer its connection, not our memory.
// Nor may a peer hold a block open: no other frame may come until it ends (RFC 9113 §6.10), and
// its fragments are copies kept here, outside the caller's body budget; a block not finished
// within headerBlockTimeoutMs ends the connection as the same flood class (600 connections each
// holding 64 KiB sat until their maximum age, +74 MB RSS: a review). One timer, only while a
// block spans frames (a HEADERS frame with END_HEADERS, the common case, arms nothing).

import { ErrorCode } from './constants.js';
import { ConnectionFault } from './errors.js';

export class HeaderBlockAssembler {
  streamId = 0;
  endStream = false;
  /** The HEADERS frame named the stream as its own dependency (a stream error after decoding). */
  selfDependent = false;
  private fragments: Buffer[] = [];
  private bytes = 0;
  private continuations = 0;

  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly maxContinuations: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: (fault: ConnectionFault) => void,
  ) {}

  /** Starts a block with its HEADERS fragment; returns the whole block if END_HEADERS was set. */
  begin(streamId: number, fragment: Buffer, endStream: boolean, endHeaders: boolean, selfDependent: boolean): Buffer | null {
    this.streamId = streamId;
    this.endStream = endStream;
    this.selfDependent = selfDependent;
    this.bytes = 0;
    this.continuations = 0;
    this.fragments.length = 0;
    this.add(fragment);
    // the common case, one frame: the fragment itself, no copy (a view into the socket chunk)
    if (endHeaders) return fragment;
    // a later chunk must not overwrite it: socket chunks are not reused, but a buffered frame body is ours only until the next frame
    this.fragments.push(Buffer.from(fragment));
    this.timer = setTimeout(this.expire, this.timeoutMs);
    this.timer.unref();
    return null;
  }

  /** A CONTINUATION fragment (the reader checked it follows on the same stream). */
  continue(fragment: Buffer, endHeaders: boolean): Buffer | null {
    if (++this.continuations > this.maxContinuations) {
      throw new ConnectionFault('continuation_flood', ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.maxContinuations} CONTINUATION frames in one header block`);
    }
    this.add(fragment);
    this.fragments.push(Buffer.from(fragment));
    if (!endHeaders) return null;
    this.stop();
    const block = Buffer.concat(this.fragments, this.bytes);
    this.fragments.length = 0;
    return block;
  }

  /** No block is awaited any more (it ended, or the connection did): the timer goes. */
  stop(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.fragments.length = 0;
    this.onTimeout(new ConnectionFault('continuation_flood', ErrorCode.ENHANCE_YOUR_CALM, `a header block not finished within ${this.timeoutMs} ms`));
  };

  private add(fragment: Buffer): void {
    this.bytes += fragment.length;
    if (this.bytes > this.maxBytes) {
      throw new ConnectionFault(this.continuations > 0 ? 'continuation_flood' : 'header_list_too_large', ErrorCode.ENHANCE_YOUR_CALM, `a header block of more than ${this.maxBytes} bytes`);
    }
  }
}

// One HTTP/2 stream as its user sees it: a Duplex whose readable side is the peer's body
// (request body on a server, response body on a client) and whose writable side is ours. The
// names follow Node's Http2Stream where they mean the same (respond, additionalHeaders,
// sendTrailers with 'wantTrailers', close(code), rstCode, 'response', 'headers', 'trailers',
// 'aborted', endAfterHeaders), so the sidecar can sit on either codec. This file holds the
// stream's state, its user-facing methods and Node's stream hooks; the work behind them is in
// stream-send-side.ts (framing our body within the windows, the end, completion) and
// stream-receive-side.ts (the peer's heads, body, end and resets; credit returned as read).
//
// Backpressure both ways: received DATA is pushed into the readable buffer (or held compactly
// while the consumer is behind) and its credit is returned (WINDOW_UPDATE) only as the
// consumer takes it (_read, or a flowing 'data' listener);
// each written chunk's callback waits until the chunk has been framed within the stream's and
// the connection's send windows, so write() returns false while the peer's window is shut, and
// for a chunk the writer holds by reference, until the socket has it (the buffer may be reused).

import { Duplex, Readable } from 'node:stream';
import { ErrorCode, type Settings } from './constants.js';
import type { HeaderListTooLargeError } from './errors.js';
import { responseHeadOverPeer } from './peer-limits.js';
import { ReceiveWindow, SendWindow } from './flow-control.js';
import type { BatchWaiter } from './batch-waiters.js';
import { HeadKind, type OutgoingHeaders } from './headers.js';
import { InvalidHeaderError, flattenHeaders } from './headers-outgoing.js';
import { returnConsumedCredit } from './stream-receive-side.js';
import { dropHeld, releaseHeld, releaseIfLow } from './stream-held-body.js';
import { checkClosed, dropOutput, endsWithBatch, localEnded, sendHead } from './stream-send-side.js';

/** What a stream needs from its connection (implemented by H2Connection). */
export interface StreamHost {
  readonly isServer: boolean;
  /** The peer's SETTINGS (a head over its maxHeaderListSize is not sent). */
  readonly remoteSettings: Readonly<Settings>;
  /** Encodes and frames a header block (HEADERS + CONTINUATION); false if it was not sent (the stream was reset instead). */
  sendHeaderBlock(stream: H2Stream, flat: string[], endStream: boolean): boolean;
  /** The stream has DATA (or its end) to send: schedule it. */
  wantsToSend(stream: H2Stream): void;
  /** Small payloads are coalesced in the stream's tail: hand them over when the socket read ends (releaseAfterRead). */
  releaseAfterRead(stream: H2Stream): void;
  /** The consumer took `n` bytes: return connection credit, and stream credit from `window`. */
  returnCredit(stream: H2Stream, n: number): void;
  /** RST_STREAM with `code`, and forget the stream. */
  resetStream(stream: H2Stream, code: number): void;
  /** Both sides ended: forget the stream (it completed). */
  streamCompleted(stream: H2Stream): void;
  /** Frames the last DATA frame of a chunk whose callback (stream.sentCb) waits until the socket has it (batch-waiters.ts). */
  frameHeldData(stream: H2Stream, payload: Buffer, waiter: BatchWaiter): void;
  /** Frames one DATA frame (flow control already spent). */
  frameData(streamId: number, payload: Buffer, endStream: boolean): void;
}

export interface RespondOptions {
  /** The response has no body: HEADERS carries END_STREAM. */
  readonly endStream?: boolean;
  /** At the end of the body emit 'wantTrailers' and wait for sendTrailers() (gRPC). */
  readonly waitForTrailers?: boolean;
}

const EMPTY = Buffer.alloc(0);

/** A final response status (1xx heads go out through additionalHeaders). */
const FINAL_STATUS = /^[2-5][0-9][0-9]$/;

export class H2Stream extends Duplex implements BatchWaiter {
  /** RST_STREAM code, once the stream was reset by either side. */
  rstCode: number | undefined = undefined;
  headersSent = false;
  /** performance.now() when the stream was made: a server's rapid-reset count reads its age (limits.ts: peerResetKind). */
  readonly openedMs = performance.now();
  /** A server's: the caller's own deadline for the request, in ms, set by whoever reads its head (limits.ts: peerResetKind). */
  callerDeadlineMs: number | undefined = undefined;
  /** The peer's HEADERS carried END_STREAM (a request or response without body). */
  endAfterHeaders = false;
  /** END_STREAM (or RST_STREAM) sent. */
  localClosed = false;
  /** END_STREAM (or RST_STREAM) received. */
  remoteClosed = false;
  /** Both sides done or reset: no longer counted by the connection. */
  protocolClosed = false;
  readonly sendWindow: SendWindow;
  readonly recvWindow: ReceiveWindow;
  /** Client: the final response head arrived (later HEADERS are trailers). */
  headReceived = false;
  /** content-length the peer announced, or -1; and the DATA bytes received so far. */
  contentLength = -1;
  dataReceived = 0;
  /** The request is HEAD: a client's response announces no body; a server's respond() sends none. */
  isHeadRequest = false;
  /** Client: bytes of the 1xx heads received (RFC 7541 sizes), bounded like one header list. */
  informationalBytes = 0;
  /** DATA payload bytes framed toward the peer so far. */
  bytesSent = 0;
  /** In the connection's ready-to-send list. */
  queued = false;
  /** Blocked on its own send window (re-queued by the peer's WINDOW_UPDATE). */
  windowBlocked = false;
  // Internal state kept by stream-send-side.ts and stream-receive-side.ts (not for users).
  /** The chunk being framed, how far, and its write callback (called once it is all framed). */
  chunk: Buffer | null = null;
  chunkOffset = 0;
  chunkCb: ((err?: Error | null) => void) | null = null;
  /** The write callback of a chunk framed by reference, and its length: it runs once the socket has it (batchWritten). */
  sentCb: ((err?: Error | null) => void) | null = null;
  /** DATA frames of this stream held by reference in batches the socket has not taken yet. */
  heldBatches = 0;
  /** Waits with a batch for a DATA frame that is not its chunk's last (made once, for streams whose chunks are split). */
  partWaiter: BatchWaiter | null = null;
  sentLength = 0;
  /** _final's callback: the end is to be sent. */
  finalCb: ((err?: Error | null) => void) | null = null;
  waitForTrailers = false;
  /** 'wantTrailers' was emitted: the end waits for sendTrailers(), however late. */
  trailersWanted = false;
  /** DATA bytes handed to the stream (readable buffer or held), and those whose credit went back. */
  pushedBytes = 0;
  creditedBytes = 0;
  /** Ended both ways with bytes unread: counted in the connection's windowHolders until read or destroyed. */
  holdsWindow = false;
  /** What is held while the consumer is behind (stream-held-body.ts): pieces, bytes, the open tail. */
  held: Buffer[] | null = null;
  heldBytes = 0;
  tail: Buffer | null = null;
  tailFill = 0;
  /** Where the tail's bytes not yet handed to the consumer begin (what is before went as views). */
  tailStart = 0;
  /** Small payloads of the current socket read (views, counted in heldBytes), released at its end. */
  readPending: Buffer[] | null = null;
  readPendingBytes = 0;
  /** Queued with the connection for the end of the current socket read. */
  releaseQueued = false;

  constructor(
    readonly id: number,
    readonly host: StreamHost,
    sendWindow: number,
    recvWindow: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 16_384 });
    this.sendWindow = new SendWindow(sendWindow);
    this.recvWindow = new ReceiveWindow(recvWindow);
  }

  // --- the user's side ------------------------------------------------------------------------

  /** Server: sends the response head. */
  respond(headers: OutgoingHeaders | readonly string[], options?: RespondOptions): void {
    if (this.headersSent) throw new Error('the response head was already sent');
    if (this.localClosed) throw new Error('the stream is closed');
    const flat = flattenHeaders(headers, HeadKind.Response); // throws on what HTTP/2 cannot carry, before anything changes
    // a final status, as Node's respond() demands (ERR_HTTP2_STATUS_INVALID, _INFO): a peer
    // resets a stream whose :status is not three digits, and 1xx heads are additionalHeaders'
    // (pseudo-headers come first, and a response carries :status alone)
    if (!FINAL_STATUS.test(flat[1]!)) throw new InvalidHeaderError(`:status ${JSON.stringify(flat[1])} is not a final status (200-599)`);
    // a HEAD answer, 204, 205 and 304 have no body (RFC 9110 §6.4.1): the head ends the stream
    // (its writable side too), as Node's respond() does, so no DATA follows that the peer must
    // refuse as a content-length mismatch; a body written after it is a write after end
    const status = flat[1]!;
    const bodyless = this.isHeadRequest || status === '204' || status === '205' || status === '304';
    const endStream = options?.endStream === true || bodyless;
    this.waitForTrailers = options?.waitForTrailers === true && !bodyless;
    sendHead(this, flat, endStream);
  }

  /**
   * Server: the error respond() would reset the stream with for `headers` (a head over the
   * peer's SETTINGS_MAX_HEADER_LIST_SIZE), measured without sending anything; undefined if it fits.
   */
  headOverPeerLimit(headers: OutgoingHeaders | readonly string[]): HeaderListTooLargeError | undefined {
    return responseHeadOverPeer(this.host, headers);
  }

  /** Client: wait for trailers at the end of the request body (set before end()). */
  set wantTrailers(value: boolean) {
    this.waitForTrailers = value;
  }

  /** An informational (1xx) head before the final one, e.g. 100 Continue. */
  additionalHeaders(headers: OutgoingHeaders | readonly string[]): void {
    if (this.headersSent || this.localClosed) throw new Error('informational headers after the response head');
    this.host.sendHeaderBlock(this, flattenHeaders(headers, HeadKind.Response), false);
  }

  /**
   * Ends the stream with a trailers block, only after 'wantTrailers' (Node's rule too): earlier,
   * body bytes still queued would go out after our END_STREAM, or be lost.
   */
  sendTrailers(trailers: OutgoingHeaders | readonly string[]): void {
    if (this.localClosed) return;
    if (!this.trailersWanted) throw new Error("sendTrailers() before 'wantTrailers': the body has not been sent yet");
    const flat = flattenHeaders(trailers, HeadKind.Trailers);
    // no trailers: the stream ends with DATA END_STREAM, not an empty HEADERS frame (Node's
    // codec does the same: empty trailers break some browsers), on the last DATA frame if it
    // has not left yet
    if (flat.length === 0) this.host.frameData(this.id, EMPTY, true);
    else if (!this.host.sendHeaderBlock(this, flat, true)) return;
    localEnded(this);
  }

  /** Resets the stream with `code` (default NO_ERROR) and destroys it. */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (!this.protocolClosed) {
      this.rstCode = code;
      this.host.resetStream(this, code);
    }
    this.destroy();
  }

  // --- Node's stream hooks -------------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localClosed) return cb(this.rstCode === undefined ? new Error('write after the stream ended') : null);
    if (!this.headersSent) return cb(new Error('write before the head was sent (respond() first)'));
    if (chunk.length === 0) return cb();
    this.chunk = chunk;
    this.chunkOffset = 0;
    this.chunkCb = cb;
    this.host.wantsToSend(this);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localClosed) {
      // ended already: reset, or END_STREAM went with the last DATA frame (endsWithBatch)
      cb();
      checkClosed(this);
      return;
    }
    if (!this.headersSent) return cb(new Error('end before the head was sent (respond() first)'));
    this.finalCb = cb;
    this.host.wantsToSend(this);
  }

  // BatchWaiter (batch-waiters.ts): a chunk held by reference until its batch is written
  endsWithBatch(): boolean {
    return endsWithBatch(this);
  }

  batchWritten(): void {
    // every part of the chunk framed by reference has left (the batches leave in order)
    if (--this.heldBatches > 0) return;
    const cb = this.sentCb;
    this.sentCb = null;
    cb?.();
  }

  override _read(): void {
    releaseHeld(this);
    returnConsumedCredit(this);
  }

  // _read() runs only when the buffer falls below the high-water mark, and not again until
  // something is pushed; a consumer reading a full buffer bit by bit returns its credit here,
  // as it takes each piece; and what is held joins the readable once it runs low, or when the
  // consumer asks for more than it has (readableLength, which counts held bytes, promised it)
  override read(size?: number): ReturnType<Duplex['read']> {
    if (this.heldBytes > 0) releaseIfLow(this, size ?? 0);
    const chunk = super.read(size);
    if (this.pushedBytes !== this.creditedBytes) returnConsumedCredit(this);
    return chunk;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.protocolClosed) {
      this.rstCode = err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL;
      this.host.resetStream(this, this.rstCode);
    }
    // bytes never read: their connection credit goes back (the stream's own window is gone)
    dropHeld(this);
    const unread = this.pushedBytes - this.creditedBytes;
    if (unread > 0) {
      this.creditedBytes = this.pushedBytes;
      this.host.returnCredit(this, unread);
    }
    dropOutput(this);
    cb(err);
  }
}

// readableLength counts what the stream holds for its consumer outside the readable buffer too
// (stream-held-body.ts): it is what waits unread, and what the credit arithmetic subtracts.
// Node's internals use their own count, not this getter.
const baseReadableLength = Object.getOwnPropertyDescriptor(Readable.prototype, 'readableLength')!.get!;
Object.defineProperty(H2Stream.prototype, 'readableLength', {
  configurable: true,
  get(this: H2Stream): number {
    return (baseReadableLength.call(this) as number) + this.heldBytes;
  },
});

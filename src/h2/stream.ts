// One HTTP/2 stream as its user sees it: a Duplex whose readable side is the peer's body
// (request body on a server, response body on a client) and whose writable side is ours. The
// names follow Node's Http2Stream where they mean the same (respond, additionalHeaders,
// sendTrailers with 'wantTrailers', close(code), rstCode, 'response', 'headers', 'trailers',
// 'aborted', endAfterHeaders), so the sidecar can sit on either codec.
//
// Backpressure both ways: received DATA is pushed into the readable buffer and its credit is
// returned (WINDOW_UPDATE) only as the consumer takes it (_read, or a flowing 'data' listener);
// each written chunk's callback waits until the chunk has been framed within the stream's and
// the connection's send windows, so write() returns false while the peer's window is shut.

import { Duplex } from 'node:stream';
import { ErrorCode, errorCodeName } from './constants.js';
import { H2StreamError } from './errors.js';
import { ReceiveWindow, SendWindow } from './flow-control.js';
import { flattenHeaders, type IncomingHeaders, type OutgoingHeaders } from './headers.js';

/** What a stream needs from its connection (implemented by H2Connection). */
export interface StreamHost {
  readonly isServer: boolean;
  /** Encodes and frames a header block (HEADERS + CONTINUATION). */
  sendHeaderBlock(stream: H2Stream, flat: string[], endStream: boolean): void;
  /** The stream has DATA (or its end) to send: schedule it. */
  wantsToSend(stream: H2Stream): void;
  /** The consumer took `n` bytes: return connection credit, and stream credit from `window`. */
  returnCredit(stream: H2Stream, n: number): void;
  /** RST_STREAM with `code`, and forget the stream. */
  resetStream(stream: H2Stream, code: number): void;
  /** Both sides ended: forget the stream (it completed). */
  streamCompleted(stream: H2Stream): void;
  /** Frames one DATA frame (flow control already spent). */
  frameData(streamId: number, payload: Buffer, endStream: boolean): void;
}

export interface RespondOptions {
  /** The response has no body: HEADERS carries END_STREAM. */
  readonly endStream?: boolean;
  /** At the end of the body emit 'wantTrailers' and wait for sendTrailers() (gRPC). */
  readonly waitForTrailers?: boolean;
}

export class H2Stream extends Duplex {
  /** RST_STREAM code, once the stream was reset by either side. */
  rstCode: number | undefined = undefined;
  headersSent = false;
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
  /** Client: the request is HEAD (its response's content-length announces no body). */
  isHeadRequest = false;
  /** DATA payload bytes framed toward the peer so far. */
  bytesSent = 0;
  /** In the connection's ready-to-send list. */
  queued = false;
  /** Blocked on its own send window (re-queued by the peer's WINDOW_UPDATE). */
  windowBlocked = false;
  private chunk: Buffer | null = null;
  private chunkOffset = 0;
  private chunkCb: ((err?: Error | null) => void) | null = null;
  private finalCb: ((err?: Error | null) => void) | null = null;
  private waitForTrailers = false;
  private pushedBytes = 0;
  private creditedBytes = 0;

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    sendWindow: number,
    recvWindow: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 16_384 });
    this.sendWindow = new SendWindow(sendWindow);
    this.recvWindow = new ReceiveWindow(recvWindow);
  }

  // --- our side -----------------------------------------------------------------------------

  /** Server: sends the response head. */
  respond(headers: OutgoingHeaders | readonly string[], options?: RespondOptions): void {
    if (this.headersSent) throw new Error('the response head was already sent');
    if (this.localClosed) throw new Error('the stream is closed');
    const flat = flattenHeaders(headers); // throws on what HTTP/2 cannot carry, before anything changes
    const endStream = options?.endStream === true;
    this.waitForTrailers = options?.waitForTrailers === true;
    this.sendHead(flat, endStream);
  }

  /** Sends the request head (client; the connection calls it from request()). */
  sendHead(flat: string[], endStream: boolean): void {
    this.headersSent = true;
    this.host.sendHeaderBlock(this, flat, endStream);
    if (endStream) {
      this.localClosed = true;
      this.end();
      this.checkClosed();
    }
  }

  /** Client: wait for trailers at the end of the request body (set before end()). */
  set wantTrailers(value: boolean) {
    this.waitForTrailers = value;
  }

  /** An informational (1xx) head before the final one, e.g. 100 Continue. */
  additionalHeaders(headers: OutgoingHeaders | readonly string[]): void {
    if (this.headersSent || this.localClosed) throw new Error('informational headers after the response head');
    this.host.sendHeaderBlock(this, flattenHeaders(headers), false);
  }

  /** Ends the stream with a trailers block (after 'wantTrailers'). */
  sendTrailers(trailers: OutgoingHeaders | readonly string[]): void {
    if (this.localClosed) return;
    this.host.sendHeaderBlock(this, flattenHeaders(trailers), true);
    this.localEnded();
  }

  /** Resets the stream with `code` (default NO_ERROR) and destroys it. */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (!this.protocolClosed) {
      this.rstCode = code;
      this.host.resetStream(this, code);
    }
    this.destroy();
  }

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
    if (this.localClosed) return cb();
    if (!this.headersSent) return cb(new Error('end before the head was sent (respond() first)'));
    this.finalCb = cb;
    this.host.wantsToSend(this);
  }

  /** Has a chunk or the end to send. */
  get hasOutput(): boolean {
    return (this.chunk !== null || this.finalCb !== null) && !this.localClosed;
  }

  /** Has body bytes (not only the end) to send. */
  get hasData(): boolean {
    return this.chunk !== null;
  }

  /**
   * Called by the connection's send loop: frames at most `max` bytes of the current chunk
   * (the connection's window and the peer's max frame size, already bounded by the caller).
   * Returns the payload bytes framed (0 if the stream window is shut).
   */
  sendData(max: number): number {
    const chunk = this.chunk;
    if (chunk === null) {
      if (this.finalCb !== null && !this.localClosed) this.finish();
      return 0;
    }
    const n = Math.min(max, this.sendWindow.available, chunk.length - this.chunkOffset);
    if (n <= 0) {
      this.windowBlocked = true;
      return 0;
    }
    const payload = this.chunkOffset === 0 && n === chunk.length ? chunk : chunk.subarray(this.chunkOffset, this.chunkOffset + n);
    this.chunkOffset += n;
    this.sendWindow.available -= n;
    this.bytesSent += n;
    this.host.frameData(this.id, payload, false);
    if (this.chunkOffset === chunk.length) {
      const cb = this.chunkCb!;
      this.chunk = null;
      this.chunkCb = null;
      cb(); // may call _write (next chunk) or _final synchronously
    }
    return n;
  }

  private finish(): void {
    if (this.waitForTrailers) {
      // ends when the user calls sendTrailers(), in the listener or later
      this.waitForTrailers = false;
      this.emit('wantTrailers');
      return;
    }
    this.host.frameData(this.id, EMPTY, true);
    this.localEnded();
  }

  private localEnded(): void {
    this.localClosed = true;
    const cb = this.finalCb;
    this.finalCb = null;
    cb?.();
    this.checkClosed();
  }

  private checkClosed(): void {
    if (!this.localClosed || this.protocolClosed) return;
    // a server's user who never started reading the request body: nobody will (Node's rule too)
    const unread = this.host.isServer && this.readableFlowing === null;
    if (this.remoteClosed) {
      this.protocolClosed = true;
      this.host.streamCompleted(this);
      // drop the unread body so the readable ends and the stream closes
      if (unread) this.resume();
      return;
    }
    if (unread) {
      // answered in full before the request body ended, and nobody reads that body: ask the
      // client to stop sending it (RFC 9113 §8.1) rather than hold the stream open for it
      this.rstCode = ErrorCode.NO_ERROR;
      this.host.resetStream(this, ErrorCode.NO_ERROR);
      this.destroy();
    }
  }

  // --- the peer's side (called by the connection) -------------------------------------------

  receiveData(data: Buffer): void {
    this.dataReceived += data.length;
    if (data.length === 0) return;
    this.pushedBytes += data.length;
    this.push(data);
    this.returnCredit();
  }

  receiveEnd(): void {
    this.remoteClosed = true;
    this.push(null);
    this.checkClosed();
  }

  receiveHead(headers: IncomingHeaders, endStream: boolean): void {
    this.headReceived = true;
    this.endAfterHeaders = endStream;
    this.emit('response', headers, endStream);
  }

  receiveInformational(headers: IncomingHeaders): void {
    this.emit('headers', headers);
    if (headers[':status'] === '100') this.emit('continue');
  }

  receiveTrailers(trailers: IncomingHeaders): void {
    this.emit('trailers', trailers);
  }

  /** The peer reset the stream, or the connection ended it (GOAWAY, loss). */
  receiveReset(code: number, reason: H2StreamError['reason']): void {
    this.rstCode = code;
    const bodyComplete = this.remoteClosed;
    this.localClosed = this.remoteClosed = this.protocolClosed = true;
    this.dropOutput();
    // RST_STREAM NO_ERROR after a complete answer (RFC 9113 §8.1): the body stays readable
    if (code === ErrorCode.NO_ERROR && bodyComplete) {
      if (this.readableEnded) this.destroy();
      else this.once('end', () => this.destroy());
      return;
    }
    if (!this.readableEnded) this.emit('aborted');
    const err = code === ErrorCode.NO_ERROR || code === ErrorCode.CANCEL ? undefined : new H2StreamError(reason, code, `stream ${this.id} ended: ${errorCodeName(code)}`);
    this.destroy(err);
  }

  /** The connection is gone: the stream ends with `err` unless it already completed. */
  lose(err: Error): void {
    this.localClosed = this.remoteClosed = this.protocolClosed = true;
    this.dropOutput();
    if (this.destroyed) return;
    if (!this.readableEnded) this.emit('aborted');
    this.destroy(err);
  }

  /** Returns the credit for what the consumer has taken since last time. */
  private returnCredit(): void {
    const taken = this.pushedBytes - this.readableLength - this.creditedBytes;
    if (taken > 0) {
      this.creditedBytes += taken;
      this.host.returnCredit(this, taken);
    }
  }

  override _read(): void {
    this.returnCredit();
  }

  // _read() runs only when the buffer falls below the high-water mark; a consumer reading a
  // full buffer bit by bit returns its credit here, as it takes each piece
  override read(size?: number): ReturnType<Duplex['read']> {
    const chunk = super.read(size);
    if (this.pushedBytes !== this.creditedBytes) this.returnCredit();
    return chunk;
  }

  private dropOutput(): void {
    const cb = this.chunkCb;
    this.chunk = null;
    this.chunkCb = null;
    cb?.();
    const fin = this.finalCb;
    this.finalCb = null;
    fin?.();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.protocolClosed) {
      this.rstCode = err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL;
      this.host.resetStream(this, this.rstCode);
    }
    // bytes never read: their connection credit goes back (the stream's own window is gone)
    const unread = this.pushedBytes - this.creditedBytes;
    if (unread > 0) {
      this.creditedBytes = this.pushedBytes;
      this.host.returnCredit(this, unread);
    }
    this.dropOutput();
    cb(err);
  }
}

const EMPTY = Buffer.alloc(0);

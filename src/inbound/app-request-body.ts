// Writes a request's body to the app's socket for the own HTTP/1.1 client (app-connection.ts):
// as it is (its Content-Length was in the head, and is held to the bytes: one byte past it is
// an error, a body ending short of it is not finished), or chunked (a chunk per piece read, an
// empty piece skipped since a chunk of size 0 would end the body, `0\r\n\r\n` at the end).
// The socket's backpressure pauses the body; its 'drain' resumes it. One writer per
// connection, reused by each request it carries.

import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { APP_CLIENT_ERRORS, appClientError } from './app-dispatch.js';

/** The connection's side: how the body ended. */
export interface BodyWriterOwner {
  /** The whole body is written (the chunked end included). */
  bodySent(): void;
  /** The body failed, ran long, ended short, or was reset: the request must not be finished. */
  bodyFailed(err: Error): void;
  /** Whether an ended body is the caller's whole body (see AppDispatchHandler.bodyWhole). */
  bodyWhole(body: Readable): boolean;
}

function uncork(socket: Socket): void {
  socket.uncork();
}

export class RequestBodyWriter {
  private body: Readable | undefined = undefined;
  private contentLength: number | undefined = undefined;
  private bytes = 0;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    private readonly owner: BodyWriterOwner,
  ) {
    socket.on('drain', this.onDrain);
  }

  /**
   * Writes the request's head, then sends `body` (paused until now); `contentLength` undefined:
   * chunked. The head waits, corked, for the body's first turn: what of the body is already here
   * (a small upload, HEADERS and DATA in one read of the caller's connection) goes in the same
   * write, one system call and one wake-up of the app rather than two. The body's resume is
   * queued before the uncork, so its buffered pieces come first; a body still to come does not
   * hold the head back past this turn.
   */
  start(head: string, body: Readable, contentLength: number | undefined): void {
    this.body = body;
    this.contentLength = contentLength;
    this.bytes = 0;
    this.paused = false;
    this.socket.cork();
    this.socket.write(head, 'latin1');
    body.on('data', this.onData);
    body.on('end', this.onEnd);
    body.on('error', this.onError);
    body.resume();
    process.nextTick(uncork, this.socket);
  }

  /**
   * Lets go of the body before its end (the answer came first, the request was cut): paused,
   * as undici left it, for the exchange to decide what becomes of the rest.
   */
  stop(): void {
    const body = this.release();
    body?.pause();
  }

  private release(): Readable | undefined {
    const body = this.body;
    if (body === undefined) return undefined;
    body.off('data', this.onData);
    body.off('end', this.onEnd);
    body.off('error', this.onError);
    this.body = undefined;
    this.paused = false;
    return body;
  }

  private readonly onData = (chunk: Buffer | string): void => {
    if (typeof chunk === 'string') chunk = Buffer.from(chunk);
    if (chunk.length === 0) return; // a chunk of size 0 would end a chunked body
    this.bytes += chunk.length;
    const socket = this.socket;
    let flowing: boolean;
    if (this.contentLength !== undefined) {
      if (this.bytes > this.contentLength) {
        this.stop();
        this.owner.bodyFailed(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, 'the request body ran past its Content-Length'));
        return;
      }
      flowing = socket.write(chunk);
    } else {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      flowing = socket.write('\r\n', 'latin1');
      socket.uncork();
    }
    if (!flowing) {
      this.paused = true;
      this.body?.pause();
    }
  };

  private readonly onEnd = (): void => {
    const contentLength = this.contentLength;
    const body = this.release() as Readable;
    if ((contentLength !== undefined && this.bytes !== contentLength) || !this.owner.bodyWhole(body)) {
      this.owner.bodyFailed(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, 'the request body ended short of its Content-Length, or was reset'));
      return;
    }
    if (contentLength === undefined) this.socket.write('0\r\n\r\n', 'latin1');
    this.owner.bodySent();
  };

  private readonly onError = (err: Error): void => {
    this.stop();
    this.owner.bodyFailed(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, `the request body failed (${err.message})`));
  };

  private readonly onDrain = (): void => {
    if (!this.paused) return;
    this.paused = false;
    this.body?.resume();
  };
}

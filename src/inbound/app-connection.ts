// One keep-alive connection to an HTTP/1.1 app, one request at a time (no pipelining): writes
// the request with explicit framing (Content-Length held to the bytes sent, else chunked),
// streams its body under the socket's backpressure, and reads the answer with Node's llhttp
// (src/http/llhttp.ts), handing it to an undici-style handler (app-dispatch.ts).
//
// A connection goes back to its pool only when it is in a known state: the answer complete by
// its own framing, the whole request written, the app willing (keep-alive), and not one byte
// more from the app. Anything else (an early answer, bytes after the answer or while idle, an
// error) closes it, so no caller ever reads a byte meant for another. What the socket's end,
// errors, close, a connect timeout and a write the app's hang-up failed do to the request on
// it is in app-connection-socket.ts; what a status under 200 or a trailer naming Connection
// means for the request and the connection in app-answer-judgement.ts.

import net from 'node:net';
import type { Readable } from 'node:stream';
import { LlhttpParser, type Llhttp, type OnBody, type OnHeaders, type OnHeadersComplete } from '../http/llhttp.js';
import { APP_CLIENT_ERRORS, appClientError, type AppDispatchHandler, type AppRequest } from './app-dispatch.js';
import { namesConnection, nonFinalStatusError, skippedBodyMayFollow } from './app-answer-judgement.js';
import { keepAliveHint, requestHead } from './app-request-head.js';
import { RequestBodyWriter, type BodyWriterOwner } from './app-request-body.js';
import { listenToAppSocket } from './app-connection-socket.js';
import { APP_ANSWER_HEAD_BYTES } from './answer-head-limit.js';
import { refusedAfterHead } from './app-errors.js';

/** The pool's side of a connection. */
export interface ConnectionOwner {
  /** The connection finished a request and may carry another. */
  released(connection: AppConnection): void;
  /** The connection is gone. */
  closed(connection: AppConnection): void;
}

/** llhttp's async resource: one, shared (nothing here uses async hooks per connection). */
const PARSER_RESOURCE = Object.freeze({});
/** llhttp: read no body for this head. */
const SKIP_BODY = 1;

export class AppConnection implements BodyWriterOwner {
  readonly socket: net.Socket;
  // parser, handler, finalHead, responseDone, keepAlive, closed, owner, fail() and complete() are
  // not private only because the socket's listeners (app-connection-socket.ts) use them: internal.
  readonly parser: Llhttp;
  private readonly bodyWriter: RequestBodyWriter;
  private request: AppRequest | undefined = undefined;
  handler: AppDispatchHandler | undefined = undefined;
  /** Field lines llhttp handed out in parts (a head of over 32 fields, or trailers). */
  private fields: string[] = [];
  /** A final (non-1xx) head came. */
  finalHead = false;
  responseDone = false;
  /** Bytes came after the answer was complete: the connection is out of step. */
  private stray = false;
  /** The latest head read on this connection, interim or final (none yet: undefined): llhttp's later refusal is not "no HTTP/1.1 server". */
  private lastHead: 'interim' | 'final' | undefined = undefined;
  /** A write failed because the app hung up (app-write-hang-up.ts): what the read side brings decides. */
  writeHangUp: Error | undefined = undefined;
  private requestSent = false;
  /** Interim (1xx) answers to the current request so far (app-answer-judgement.ts bounds them). */
  private interimAnswers = 0;
  keepAlive = false;
  private readingPaused = false;
  private trailers: string[] | null = null;
  closed = false;
  /** Inside assign()'s onConnect: an abort then leaves the connection unused, not cut. */
  private assigning = false;
  /** The app's Keep-Alive: timeout hint in ms (undefined: none given). */
  keepAliveHintMs: number | undefined = undefined;
  /** When an idle connection should be closed (performance.now() ms); set by the pool. */
  idleUntil = 0;

  /** `connectTimeoutMs`: a new connection must be up within this (undici's default is 10 s), else 503 upstream_unavailable. */
  constructor(host: string, port: number, readonly owner: ConnectionOwner, connectTimeoutMs: number) {
    const socket = (this.socket = net.connect({ host, port, noDelay: true }));
    this.bodyWriter = new RequestBodyWriter(socket, this);
    const parser = (this.parser = new LlhttpParser());
    parser.initialize(LlhttpParser.RESPONSE, PARSER_RESOURCE, APP_ANSWER_HEAD_BYTES, LlhttpParser.kLenientNone);
    parser[LlhttpParser.kOnMessageBegin] = this.onMessageBegin;
    parser[LlhttpParser.kOnHeaders] = this.onHeaders;
    parser[LlhttpParser.kOnHeadersComplete] = this.onHeadersComplete;
    parser[LlhttpParser.kOnBody] = this.onBody;
    parser[LlhttpParser.kOnMessageComplete] = this.onMessageComplete;
    socket.on('data', this.onSocketData);
    // 'end', 'error', 'close' and the connect timeout (app-connection-socket.ts)
    listenToAppSocket(this, socket, connectTimeoutMs);
  }

  /** Carries `request`; the connection is new, or idle and reusable. */
  assign(request: AppRequest, handler: AppDispatchHandler): void {
    this.request = request;
    this.handler = handler;
    this.fields = [];
    this.interimAnswers = 0;
    this.finalHead = this.responseDone = this.requestSent = this.keepAlive = false;
    this.trailers = null;
    this.writeHangUp = undefined;
    this.keepAliveHintMs = undefined;
    if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
    this.assigning = true;
    handler.onConnect(() => {
      if (this.handler !== handler) return;
      if (this.assigning) this.detach();
      else this.cut();
    }, this.socket);
    this.assigning = false;
    if (this.handler !== handler) {
      // cancelled while it waited for a connection: nothing was written, so this one stays good
      if (!this.closed) this.owner.released(this);
      return;
    }
    const head = requestHead(request);
    if (head === undefined) {
      this.fail(appClientError(APP_CLIENT_ERRORS.invalidField, 'the request has a method, target or field that cannot be written (a line break, NUL, space or non-token character)'));
      return;
    }
    const body = request.body;
    if (body === undefined) {
      this.socket.write(head, 'latin1');
      this.sent();
      return;
    }
    this.bodyWriter.start(head, body, request.contentLength);
  }

  /** Closes the connection (idle timeout, pool closed). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** The request is over for this connection: its handler and body are let go. */
  private detach(): AppDispatchHandler | undefined {
    const handler = this.handler;
    this.stopBody();
    this.request = this.handler = undefined;
    return handler;
  }

  /** @internal Stops sending the request's body, if it is still going (left paused for the exchange). */
  stopBody(): void {
    if (this.request?.body !== undefined && !this.requestSent) this.bodyWriter.stop();
  }

  /** Cut by its handler (no more calls to it) or by a fault of the request. */
  private cut(): void {
    this.detach();
    this.destroy();
  }

  /** @internal The request fails with `err` and the connection is closed. */
  fail(err: unknown): void {
    const handler = this.detach();
    this.destroy();
    try {
      handler?.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // a handler that throws on its own error: the connection is gone, the process must stay
    }
  }

  /** @internal RequestBodyWriter's: the body is written. */
  bodySent(): void {
    this.sent();
  }

  /** @internal RequestBodyWriter's: the body failed; the request is cut. */
  bodyFailed(err: Error): void {
    this.fail(err);
  }

  /** @internal RequestBodyWriter's: asks the handler whether an ended body is whole. */
  bodyWhole(body: Readable): boolean {
    return this.handler?.bodyWhole?.(body) ?? true;
  }

  private sent(): void {
    this.requestSent = true;
    try {
      this.handler?.onRequestSent?.();
    } catch (err) {
      this.fail(err);
    }
  }

  private readonly onSocketData = (data: Buffer): void => {
    if (this.handler === undefined) {
      // nothing was asked: bytes from an idle app, or after an answer whose handler went
      this.destroy();
      return;
    }
    // a handler's exception comes out of execute() (llhttp calls it): it fails this request and
    // its connection, never the process
    let result: number | Error;
    try {
      result = this.parser.execute(data);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result instanceof Error) {
      // bytes after a complete answer: relay that answer, but never reuse the connection
      if (this.responseDone) this.stray = true;
      else {
        this.fail(this.lastHead === undefined ? result : refusedAfterHead(result, this.lastHead));
        return;
      }
    }
    // an answer that came whole before the request did is handed on at once, and its
    // connection closed (undici does the same): the app's state after it is a guess
    if (this.responseDone) this.complete();
  };

  /** @internal The answer is whole and the request sent (or the connection is lost anyway): hand it on. */
  complete(): void {
    let reusable = this.keepAlive && this.requestSent && !this.stray && !this.closed && this.writeHangUp === undefined;
    if (this.readingPaused) {
      // paused for a slow caller when the answer ended: bytes already held in the socket came
      // after the answer (not seen by the stray check, nor would a FIN behind them be), so
      // such a connection is not reused; an empty one reads again, to see what the app sends
      if (this.socket.readableLength > 0) reusable = false;
      else {
        this.readingPaused = false;
        this.socket.resume();
      }
    }
    const trailers = this.trailers;
    const handler = this.detach();
    if (!reusable) this.destroy();
    try {
      handler?.onComplete(trailers);
    } catch {
      // the answer was whole; what the handler did with it is not this connection's state
    }
    if (reusable && !this.closed) this.owner.released(this);
  }

  private readonly onMessageBegin = (): void => {
    if (this.responseDone) this.stray = true;
  };

  private readonly onHeaders: OnHeaders = (fields) => {
    if (this.stray) return;
    for (let i = 0; i < fields.length; i++) this.fields.push(fields[i] as string);
  };

  private readonly onHeadersComplete: OnHeadersComplete = (_major, _minor, fields, _method, _url, statusCode, statusText, _upgrade, shouldKeepAlive) => {
    const handler = this.handler;
    if (this.stray || handler === undefined) return SKIP_BODY;
    const raw = fields ?? this.fields;
    this.fields = [];
    this.lastHead = statusCode < 200 ? 'interim' : 'final';
    if (statusCode < 200) {
      // no final answer: an error (a status no request asked for, or one too many) fails the request
      const refusal = nonFinalStatusError(statusCode, ++this.interimAnswers);
      if (refusal !== undefined) this.fail(refusal);
      return SKIP_BODY;
    }
    this.finalHead = true;
    this.keepAlive = shouldKeepAlive;
    this.keepAliveHintMs = keepAliveHint(raw);
    handler.onHeaders(statusCode, raw, () => {
      if (this.handler !== handler || !this.readingPaused) return;
      this.readingPaused = false;
      this.socket.resume();
    }, statusText);
    // an answer to HEAD has no body whatever its framing says; nor has a 204 or 304. Bytes the
    // app may send as one anyway would be the next caller's answer: then the connection goes
    const isHead = this.request?.method === 'HEAD';
    if (!isHead && statusCode !== 204 && statusCode !== 304) return 0;
    if (skippedBodyMayFollow(isHead, raw)) this.keepAlive = false;
    return SKIP_BODY;
  };

  private readonly onBody: OnBody = (chunk) => {
    const handler = this.handler;
    if (this.stray || handler === undefined) return;
    if (!handler.onData(chunk) && this.handler === handler && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
  };

  private readonly onMessageComplete = (): void => {
    if (this.stray || this.handler === undefined || !this.finalHead) return; // an interim answer's end
    this.responseDone = true;
    if (this.fields.length > 0) {
      this.trailers = this.fields;
      if (namesConnection(this.fields)) this.keepAlive = false;
    }
    this.fields = [];
  };
}

// One keep-alive connection to an HTTP/1.1 app, one request at a time (no pipelining): writes
// the request with explicit framing (Content-Length held to the bytes sent, else chunked),
// streams its body under the socket's backpressure, and reads the answer with Node's llhttp
// (src/http/llhttp.ts), handing it to an undici-style handler (app-dispatch.ts).
//
// A connection goes back to its pool only when it is in a known state: the answer complete by
// its own framing, the whole request written, the app willing (keep-alive), and not one byte
// more from the app. Anything else (an early answer, bytes after the answer or while idle, an
// error) closes it, so no caller ever reads a byte meant for another.

import net from 'node:net';
import type { Readable } from 'node:stream';
import { LlhttpParser, type Llhttp, type OnBody, type OnHeaders, type OnHeadersComplete } from '../http/llhttp.js';
import { APP_CLIENT_ERRORS, appClientError, type AppDispatchHandler, type AppRequest } from './app-dispatch.js';
import { keepAliveHint, requestHead } from './app-request-head.js';

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

export class AppConnection {
  readonly socket: net.Socket;
  private readonly parser: Llhttp;
  private request: AppRequest | undefined = undefined;
  private handler: AppDispatchHandler | undefined = undefined;
  /** Field lines llhttp handed out in parts (a head of over 32 fields, or trailers). */
  private fields: string[] = [];
  private finalHead = false;
  private responseDone = false;
  /** Bytes came after the answer was complete: the connection is out of step. */
  private stray = false;
  private requestSent = false;
  private keepAlive = false;
  private bodyBytes = 0;
  private bodyPaused = false;
  private readingPaused = false;
  private trailers: string[] | null = null;
  private closed = false;
  /** The app's Keep-Alive: timeout hint in ms (undefined: none given). */
  keepAliveHintMs: number | undefined = undefined;
  /** When an idle connection should be closed (Date.now() ms); set by the pool. */
  idleUntil = 0;

  constructor(host: string, port: number, private readonly owner: ConnectionOwner) {
    const socket = (this.socket = net.connect({ host, port, noDelay: true }));
    const parser = (this.parser = new LlhttpParser());
    parser.initialize(LlhttpParser.RESPONSE, PARSER_RESOURCE, 0, LlhttpParser.kLenientNone);
    parser[LlhttpParser.kOnMessageBegin] = this.onMessageBegin;
    parser[LlhttpParser.kOnHeaders] = this.onHeaders;
    parser[LlhttpParser.kOnHeadersComplete] = this.onHeadersComplete;
    parser[LlhttpParser.kOnBody] = this.onBody;
    parser[LlhttpParser.kOnMessageComplete] = this.onMessageComplete;
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    socket.on('drain', this.onSocketDrain);
  }

  /** Carries `request`; the connection is new, or idle and reusable. */
  assign(request: AppRequest, handler: AppDispatchHandler): void {
    this.request = request;
    this.handler = handler;
    this.fields = [];
    this.finalHead = this.responseDone = this.requestSent = this.keepAlive = false;
    this.bodyBytes = 0;
    this.trailers = null;
    this.keepAliveHintMs = undefined;
    if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
    handler.onConnect(() => {
      if (this.handler === handler) this.cut();
    });
    if (this.handler !== handler) return; // aborted at once
    const head = requestHead(request);
    if (head === undefined) {
      this.fail(appClientError(APP_CLIENT_ERRORS.invalidField, 'a request field holds a line break or NUL'));
      return;
    }
    this.socket.write(head, 'latin1');
    const body = request.body;
    if (body === undefined) {
      this.sent();
      return;
    }
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
    body.resume();
  }

  /** Closes the connection (idle timeout, pool closed). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** The request is over for this connection: its handler and body are let go. */
  private detach(): AppDispatchHandler | undefined {
    const handler = this.handler;
    const body = this.request?.body;
    if (body !== undefined && !this.requestSent) {
      body.off('data', this.onBodyData);
      body.off('end', this.onBodyEnd);
      body.off('error', this.onBodyError);
      // as undici left it: the exchange decides what becomes of the rest of the caller's body
      body.pause();
    }
    this.request = this.handler = undefined;
    this.bodyPaused = false;
    return handler;
  }

  /** Cut by its handler (no more calls to it) or by a fault of the request. */
  private cut(): void {
    this.detach();
    this.destroy();
  }

  private fail(err: Error): void {
    const handler = this.detach();
    this.destroy();
    handler?.onError(err);
  }

  private sent(): void {
    this.requestSent = true;
    this.handler?.onRequestSent?.();
  }

  private readonly onBodyData = (chunk: Buffer | string): void => {
    const request = this.request as AppRequest;
    if (typeof chunk === 'string') chunk = Buffer.from(chunk);
    if (chunk.length === 0) return; // a chunk of size 0 would end a chunked body
    this.bodyBytes += chunk.length;
    const socket = this.socket;
    let flowing: boolean;
    if (request.contentLength !== undefined) {
      if (this.bodyBytes > request.contentLength) {
        this.fail(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, 'the request body ran past its Content-Length'));
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
      this.bodyPaused = true;
      request.body?.pause();
    }
  };

  private readonly onBodyEnd = (): void => {
    const request = this.request as AppRequest;
    const body = request.body as Readable;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    const whole = (request.contentLength === undefined || this.bodyBytes === request.contentLength) && (this.handler?.bodyWhole?.(body) ?? true);
    if (!whole) {
      this.requestSent = true; // the listeners are off already
      this.fail(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, 'the request body ended short of its Content-Length, or was reset'));
      return;
    }
    if (request.contentLength === undefined) this.socket.write('0\r\n\r\n', 'latin1');
    this.sent();
  };

  private readonly onBodyError = (err: Error): void => {
    this.fail(appClientError(APP_CLIENT_ERRORS.bodyIncomplete, `the request body failed (${err.message})`));
  };

  private readonly onSocketDrain = (): void => {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.request?.body?.resume();
  };

  private readonly onSocketData = (data: Buffer): void => {
    if (this.handler === undefined) {
      // nothing was asked: bytes from an idle app, or after an answer whose handler went
      this.destroy();
      return;
    }
    const result = this.parser.execute(data);
    if (result instanceof Error) {
      // bytes after a complete answer: relay that answer, but never reuse the connection
      if (this.responseDone) this.stray = true;
      else {
        this.fail(result);
        return;
      }
    }
    // an answer that came whole before the request did is handed on at once, and its
    // connection closed (undici does the same): the app's state after it is a guess
    if (this.responseDone) this.complete();
  };

  private readonly onSocketEnd = (): void => {
    if (this.handler !== undefined && this.finalHead && !this.responseDone) {
      // a body delimited by the close completes now; a short one is an error
      const result = this.parser.finish();
      if (result === undefined && this.responseDone) {
        this.keepAlive = false;
        this.complete();
        return;
      }
    }
    if (this.handler !== undefined) this.fail(appClientError(APP_CLIENT_ERRORS.closed, this.finalHead ? 'the app closed the connection before its answer was complete' : 'the app closed the connection'));
    this.destroy();
  };

  private readonly onSocketError = (err: Error): void => {
    if (this.handler !== undefined) this.fail(err);
    else this.destroy();
  };

  private readonly onSocketClose = (): void => {
    if (this.handler !== undefined) this.fail(appClientError(APP_CLIENT_ERRORS.closed, 'the app closed the connection'));
    this.closed = true;
    // never inside execute(): 'close' comes on a later tick than the destroy()
    this.parser.close();
    this.owner.closed(this);
  };

  /** The answer is whole and the request sent (or the connection is lost anyway): hand it on. */
  private complete(): void {
    const reusable = this.keepAlive && this.requestSent && !this.stray && !this.closed;
    const trailers = this.trailers;
    const handler = this.detach();
    if (!reusable) this.destroy();
    handler?.onComplete(trailers);
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
    if (statusCode < 100) {
      // llhttp takes any three digits; 000 to 099 are no status
      this.fail(appClientError('HPE_INVALID_STATUS', `status ${statusCode}`));
      return SKIP_BODY;
    }
    if (statusCode < 200) {
      // Expect and Upgrade requests never come this way (app-http1-node.ts carries them)
      if (statusCode === 100) this.fail(appClientError(APP_CLIENT_ERRORS.unaskedContinue, 'a 100 Continue to a request without Expect'));
      else if (statusCode === 101) this.fail(appClientError(APP_CLIENT_ERRORS.unaskedUpgrade, 'a 101 to a request that asked for no upgrade'));
      // other interim answers (103 Early Hints...) are not relayed
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
    // an answer to HEAD has no body whatever its framing says; nor has a 204 or 304
    return statusCode === 204 || statusCode === 304 || this.request?.method === 'HEAD' ? SKIP_BODY : 0;
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
    if (this.fields.length > 0) this.trailers = this.fields;
    this.fields = [];
  };
}

// Forwards exchanges to an HTTP/1.1 app through a pooled client with a handler object (no
// ClientRequest, IncomingMessage or agent bookkeeping per request, which cost the inbound ~15 µs
// a request on node:http): meshcar's own pool over Node's llhttp (app-pool.ts, the default) or
// undici's (`http1: {appClient: undici}`), behind one dispatcher (app-dispatch.ts). Bounded
// sockets, keep-alive, backpressure both ways: the client pauses the caller's upload when the
// app's socket is full, and this handler pauses the app's response while the caller's side is full.
//
// Two kinds of request stay on node:http (app-http1-node.ts): `Expect` requests (the app, not
// the sidecar, decides whether to continue) and request targets other than origin form
// (`OPTIONS *`). Upgrade requests have a forwarder of their own there.

import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { appHeaderListOf } from './app-headers.js';
import { forwardableResponseHead, forwardableResponseList, headersOfRaw } from '../http/raw-headers.js';
import { responseCodingProblem } from '../http/body-framing.js';
import type { HostPort } from '../config/address.js';
import type { Http1AppClient } from '../config/http1-config.js';
import { formatHostPort } from '../config/address.js';
import { appAddressForCallers, isRefusedInterim } from './app-errors.js';
import { failOnApp, mayResendAfterBreak } from './app-failure.js';
import { isWholeCallerBody, NodeHttp1App } from './app-http1-node.js';
import { APP_CLIENT_ERRORS, type AppDispatchHandler, type AppDispatcher } from './app-dispatch.js';
import { AppPool } from './app-pool.js';
import { UndiciAppPool } from './app-undici-pool.js';
import { STREAMING, WAITING, type Exchange } from './exchange.js';
import { exchangeOf, type UpstreamRequest } from './exchange-links.js';
import { touch } from './exchange-deadlines.js';
import type { AppForwarder } from './forwarder.js';

export interface Http1AppOptions {
  /** Connections to the app at most; requests beyond wait in the pool's queue. Default 256. */
  readonly maxSockets?: number;
  /** Requests that may wait in that queue (inbound.limits.maxAppWaiting); default 1000. */
  readonly maxWaiting?: number;
  /** Default meshcar. */
  readonly client?: Http1AppClient;
}

/** Idle pooled connections close after this (or sooner, when the app's Keep-Alive hint says so). */
const IDLE_CONNECTION_MS = 30_000;

/** The caller's side may queue this much of the app's response before the client is paused. */
const SINK_SLACK_BYTES = 128 * 1024;

/** Errors of a connection that broke under a request before its answer began. */
const CONNECTION_BROKE = new Set(['ECONNRESET', APP_CLIENT_ERRORS.reset, 'EPIPE', 'UND_ERR_SOCKET', APP_CLIENT_ERRORS.closed]);

/** A request the client refused to write (a field value that would break its line). */
const REFUSED_REQUEST = new Set(['UND_ERR_INVALID_ARG', APP_CLIENT_ERRORS.invalidField]);

export class Http1App implements AppForwarder {
  readonly label: string;
  /** The app's address as a refusal may tell callers (app-errors.ts); undefined: not told. */
  readonly toldAddress: string | undefined;
  private readonly pool: AppDispatcher;
  /** node:http, made on first use, for the requests undici does not carry (see the header). */
  private nodeApp: NodeHttp1App | undefined;

  constructor(
    private readonly address: HostPort,
    private readonly options: Http1AppOptions = {},
  ) {
    this.label = formatHostPort(address);
    this.toldAddress = appAddressForCallers(address);
    const poolOptions = { host: address.host, port: address.port, maxConnections: options.maxSockets ?? 256, idleTimeoutMs: IDLE_CONNECTION_MS, ...(options.maxWaiting === undefined ? {} : { maxWaiting: options.maxWaiting }) };
    this.pool = options.client === 'undici' ? new UndiciAppPool(poolOptions) : new AppPool(poolOptions);
  }

  forward(exchange: Exchange): void {
    // the exchange's timers (response head, idle) were started by the handler
    if (exchange.expectsContinue || exchange.requestHeaders.expect !== undefined || exchange.target.charCodeAt(0) !== 47 /* '/' */) {
      this.nodeApp ??= new NodeHttp1App(this.address, { keepAlive: true, ...(this.options.maxSockets ? { maxSockets: this.options.maxSockets } : {}), ...(this.options.maxWaiting === undefined ? {} : { maxWaiting: this.options.maxWaiting }) });
      this.nodeApp.forward(exchange);
      return;
    }
    exchange.forwarder = this;
    this.send(exchange);
  }

  /** One attempt; a second only for a bodiless, repeatable request whose connection broke first. */
  send(exchange: Exchange): void {
    exchange.attempts++;
    // a flat [name, value, ...] list; the framing is the client's to write, from the body it
    // sends: the caller's declared length (held to the bytes), else chunked
    const headers = appHeaderListOf(exchange);
    // an HTTP/2 caller sends :authority, an HTTP/1.0 one maybe nothing; HTTP/1.1 requires Host
    // (Connection can never name Host away: src/http/hop-by-hop.ts)
    if (exchange.requestHeaders.host === undefined) headers.push('host', exchange.authority ?? this.label);
    const attempt = new AppAttempt(exchange, this);
    exchange.upstream = attempt;
    if (!exchange.requestHasBody) {
      this.pool.dispatch({ method: exchange.method, path: exchange.target, headers, caller: exchange.caller.id.uri, fresh: exchange.attempts > 1 }, attempt);
      return;
    }
    const declared = exchange.requestHeaders['content-length'];
    const contentLength = exchange.requestHeaders['transfer-encoding'] === undefined && typeof declared === 'string' && /^\d+$/.test(declared) ? Number(declared) : undefined;
    // held until the client has a connection and listens: the byte counter's 'data' listener
    // has the body flowing already, and bytes that flow before the client's would be lost
    const body = exchange.requestBody;
    body.pause();
    this.pool.dispatch({ method: exchange.method, path: exchange.target, headers, body, caller: exchange.caller.id.uri, ...(contentLength === undefined ? {} : { contentLength }) }, attempt);
  }

  close(): void {
    this.pool.close();
    this.nodeApp?.close();
  }

  // with those waiting their turn for node:http's agent (Expect, absolute-form targets; the
  // agent's own queue is cut with the rest)
  refuseWaiting(): number {
    return this.pool.refuseWaiting() + (this.nodeApp?.refuseWaiting() ?? 0);
  }
}

/**
 * One attempt toward the app: undici's handler for it, and the exchange's handle on it (to
 * cancel it). Stops acting the moment the exchange has moved on to another attempt.
 */
class AppAttempt implements UpstreamRequest, AppDispatchHandler {
  private abortRequest: ((reason?: Error) => void) | undefined = undefined;
  private resumeResponse: (() => void) | undefined = undefined;
  private cancelled = false;
  private answered = false;
  /** A 'drain' listener on the caller's side is set: one per wait (a read can hold many chunks). */
  private awaitingDrain = false;
  /** The whole request (head and body) has gone to the app. */
  writableFinished = false;
  /** The app's connection (the own client): what of the request it still holds (writableLength). */
  private appSocket: Socket | undefined = undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly app: Http1App,
  ) {}

  /** Bytes of the request written toward the app that its connection has not taken yet (undici's: not seen, 0). */
  get writableLength(): number {
    return this.appSocket?.writableLength ?? 0;
  }

  /** The exchange is over or superseded: drop the connection (as node:http's destroy() did). */
  destroy(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abortRequest?.();
  }

  onConnect(abort: (reason?: Error) => void, socket?: Socket): void {
    this.abortRequest = abort;
    this.appSocket = socket;
    // cancelled while queued for a connection: never sent
    if (this.cancelled) abort();
  }

  onRequestSent(): void {
    this.writableFinished = true;
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string): boolean {
    // 1xx interim answers (103 Early Hints...) are not relayed
    if (statusCode < 200 || this.cancelled) return true;
    this.answered = true;
    this.resumeResponse = resume;
    const exchange = this.exchange;
    // HTTP/1.1 carries trailers only after a chunked body
    const head = exchange.takesHeaderList ? forwardableResponseList(rawHeaders) : forwardableResponseHead(rawHeaders);
    const codingProblem = responseCodingProblem(head.transferEncoding);
    if (codingProblem !== undefined) {
      // fail() cancels this attempt: the connection goes, with whatever coded body follows
      exchange.fail('bad_gateway', codingProblem);
      return true;
    }
    exchange.respond(statusCode, 'list' in head ? head.list : head.headers, false, statusText, head.chunked);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const exchange = this.exchange;
    if (this.cancelled || exchange.phase !== STREAMING) return true;
    touch(exchange);
    exchange.bytesOut += chunk.length;
    const sink = exchange.responseSink as NodeJS.WritableStream & { destroyed: boolean; writableEnded: boolean };
    if (sink.destroyed || sink.writableEnded) return true; // the caller is gone; the exchange says how
    // undici hands out views of what it read from the socket, cut where the app's chunks end: a
    // 9-byte tail of a chunk can keep a whole 64 KB read alive while it waits in the caller's
    // queue (a 20 MB echo pinned ~20 MB this way). A small piece of a large read is copied.
    if (chunk.buffer.byteLength > 4 * chunk.byteLength) chunk = Buffer.from(chunk);
    // Pausing undici is dear: its resume() takes everything the socket holds and parses it
    // again, and the socket reads on meanwhile. Paused at every full 16 KB sink, one chunk got
    // through per drain while 64 KB arrived, and the socket's buffer grew with the transfer
    // (a 20 MB echo held 40 MB). With this much slack a resume moves more than arrives.
    if (sink.write(chunk) || (sink as unknown as { writableLength: number }).writableLength <= SINK_SLACK_BYTES) return true;
    // llhttp hands every chunk of the read it is parsing to us, paused or not: one listener
    // for all of them (one per chunk went past ten on a chunked answer of small pieces)
    if (!this.awaitingDrain) {
      this.awaitingDrain = true;
      sink.once('drain', onSinkDrain);
    }
    return false;
  }

  onComplete(rawTrailers: Array<Buffer | string> | null): void {
    this.writableFinished = true;
    if (this.cancelled) return;
    this.exchange.finish(rawTrailers && rawTrailers.length > 0 ? forwardableHeaders(headersOfRaw(rawTrailers)) : undefined);
  }

  onError(err: Error): void {
    const exchange = this.exchange;
    if (this.cancelled || exchange.upstream !== this) return;
    this.cancelled = true;
    if (exchange.phase === WAITING) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === APP_CLIENT_ERRORS.notSent) {
        exchange.refuseUnsent(err.message);
        return;
      }
      if (code === APP_CLIENT_ERRORS.queueFull) {
        exchange.fail('overloaded', err.message);
        return;
      }
      // a pooled connection the app had closed: most likely nothing reached the app, but the
      // break may also have come after the app read the request, so only a request that is
      // safe to repeat (and has no body to replay) is sent once more
      if (!this.answered && code !== undefined && CONNECTION_BROKE.has(code) && !isRefusedInterim(err) && mayResendAfterBreak(exchange)) {
        this.app.send(exchange);
        return;
      }
      if (code !== undefined && REFUSED_REQUEST.has(code)) {
        exchange.fail('bad_request', `the request cannot be forwarded: ${err.message}`);
        return;
      }
      failOnApp(exchange, err, this.app.toldAddress);
    } else if (exchange.phase === STREAMING) {
      exchange.broken();
    }
  }

  /**
   * At the end of the caller's body: whether it came whole. Node's HTTP/2 stream ended its body
   * like a finished one when it was reset once our answer was complete (RST_STREAM NO_ERROR);
   * finished as whole, a connection short of its Content-Length would go back to the pool, its
   * app reading the next caller's request as the rest of this body (a smuggled request). Such
   * a stream is now destroyed instead (refuseEarlyEnd, http/early-end.ts); this stays the last
   * check before a connection is reused: a body whose stream is `closed` by the time it ends,
   * or that is not its Content-Length, is not taken for whole, and the client cuts the
   * connection instead.
   */
  bodyWhole(body: Readable): boolean {
    return isWholeCallerBody(body, this.exchange);
  }

  /** The caller's side drained: let the client read the app's socket again. */
  resume(): void {
    this.awaitingDrain = false;
    if (!this.cancelled) this.resumeResponse?.();
  }
}

function onSinkDrain(this: NodeJS.WritableStream): void {
  const upstream = exchangeOf(this).upstream;
  if (upstream instanceof AppAttempt) upstream.resume();
}


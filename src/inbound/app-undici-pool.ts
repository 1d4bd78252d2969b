// undici's Pool as the inbound's client toward an HTTP/1.1 app (`http1: {appClient: undici}`;
// the default is meshcar's own, app-pool.ts): the same dispatch handler, its options made from
// an AppRequest. Loaded only when chosen: undici and its WebAssembly parser cost ~15 MB of
// resident memory a sidecar on the own client never pays.
//
// undici serves its queue in arrival order; callers take turns here instead, as in the own
// pool: at most `connections` requests are in undici at once, the rest wait in a per-caller
// round-robin queue (src/http/fair-queue.ts) and go in as requests finish; no caller has more
// than 7/8 of them in at once (app-caller-share.ts), so one caller's trickling uploads cannot
// take every connection.

import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import type { Dispatcher, Pool as PoolType } from 'undici';
import { APP_CLIENT_ERRORS, appClientError, DEFAULT_MAX_WAITING, NOT_SENT, waitWithin, type AppDispatchHandler, type AppDispatcher, type AppPoolOptions, type AppRequest } from './app-dispatch.js';
import { FairQueue } from '../http/fair-queue.js';
import { resetRenamingConnector } from './undici-reset-connector.js';
import { CallerShare } from './app-caller-share.js';
import { APP_ANSWER_HEAD_BYTES } from './answer-head-limit.js';

interface Queued {
  readonly request: AppRequest;
  readonly handler: AppDispatchHandler;
}

export class UndiciAppPool implements AppDispatcher {
  private readonly pool: PoolType;
  /** Requests in undici (connected, or in its own queue for a moment); at most `maxInFlight`. */
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxWaiting: number;
  private readonly waiting = new FairQueue<Queued>();
  /** No caller has more than 7/8 of maxInFlight in undici (app-caller-share.ts). */
  private readonly share: CallerShare;
  private closed = false;
  /** TLS only, and the app is plain HTTP; given, undici skips deriving it from Host per request (~1.5 µs). */
  private readonly servername: string;

  constructor(options: AppPoolOptions) {
    // undici's Pool alone: the package's index also loads fetch, WebSocket, caches and mocks
    // (RSS +28 MB through the index, +15 MB through the pool, llhttp's WebAssembly included)
    const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
    // Once undici's llhttp (WebAssembly) is hot, V8 recompiles it with TurboFan on background
    // threads, and the compiler's memory stays with the allocator (inbound RSS 78 → 107 MB in
    // make bench). Liftoff, the baseline compiler, costs no measurable CPU here. The flag is
    // read when a module is compiled, which undici does on its first connection, after this.
    v8.setFlagsFromString('--liftoff-only');
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.servername = `${options.host}:${options.port}`;
    this.maxInFlight = options.maxConnections ?? 256;
    this.maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING;
    this.share = new CallerShare(this.maxInFlight);
    this.pool = new Pool(`http://${host}:${options.port}`, {
      connections: this.maxInFlight,
      pipelining: 1,
      keepAliveTimeout: options.idleTimeoutMs ?? 30_000,
      keepAliveMaxTimeout: options.idleTimeoutMs ?? 30_000,
      // the exchange owns the deadlines (inbound timeout, idle timeout): no second set of timers
      headersTimeout: 0,
      bodyTimeout: 0,
      maxHeaderSize: APP_ANSWER_HEAD_BYTES,
      // a request body longer or shorter than its Content-Length is an error, never a warning
      strictContentLength: true,
      // a reset mid-answer is a cut, never the end of an answer framed by the close
      connect: resetRenamingConnector(),
    });
  }

  dispatch(request: AppRequest, handler: AppDispatchHandler): void {
    if (this.closed) {
      handler.onError(appClientError(APP_CLIENT_ERRORS.poolClosed, 'the connection pool to the app is closed'));
      return;
    }
    if (this.inFlight >= this.maxInFlight || !this.share.mayTake(request.caller ?? '')) {
      // within maxWaiting, as the own pool's queue; the attempt's cancel takes it out of the
      // queue (undici's own abort comes once it is sent)
      waitWithin(this.waiting, this.maxWaiting, request.caller ?? '', { request, handler });
      return;
    }
    this.send(request, handler);
  }

  private send(request: AppRequest, handler: AppDispatchHandler): void {
    this.inFlight++;
    const slot = new Slot(this, handler);
    this.share.take(slot, request.caller ?? '');
    const headers = request.headers as string[];
    if (request.contentLength !== undefined) headers.push('content-length', String(request.contentLength));
    // a repeated field goes as an array value (undici writes one line each); the types say string[]
    const options = { method: request.method as Dispatcher.HttpMethod, path: request.path, headers, servername: this.servername } as Dispatcher.DispatchOptions;
    // undici destroys the body stream it sent or gave up on, and takes an IncomingMessage's
    // socket away first: the caller's own request (or HTTP/2 stream, which is also its
    // response) must never be that stream, so undici gets a PassThrough of its own
    if (request.body !== undefined) options.body = request.body.pipe(new PassThrough());
    this.pool.dispatch(options, slot as unknown as Dispatcher.DispatchHandler);
  }

  /** @internal A request undici carried is over (answered or failed): the next caller's turn. */
  finished(slot: Slot): void {
    this.inFlight--;
    this.share.release(slot);
    if (this.closed) return;
    const next = this.waiting.shiftWhere(this.share.mayTake);
    if (next !== undefined) this.send(next.request, next.handler);
  }

  refuseWaiting(): number {
    const waiting = this.waiting.drain();
    for (const { handler } of waiting) handler.onError(appClientError(APP_CLIENT_ERRORS.notSent, NOT_SENT));
    return waiting.length;
  }

  close(): void {
    this.closed = true;
    for (const { handler } of this.waiting.drain()) handler.onError(appClientError(APP_CLIENT_ERRORS.poolClosed, 'the connection pool to the app is closed'));
    void this.pool.destroy().catch(() => undefined);
  }
}

/** The handler undici gets: the attempt's own, and the pool told when the request is over. */
class Slot {
  private over = false;

  constructor(
    private readonly pool: UndiciAppPool,
    private readonly handler: AppDispatchHandler,
  ) {}

  onConnect(abort: (reason?: Error) => void): void {
    this.handler.onConnect(abort);
  }

  onRequestSent(): void {
    this.handler.onRequestSent?.();
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string): boolean {
    return this.handler.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.handler.onData(chunk);
  }

  // the next request goes in once this one's handler is done with its end (not from within it)
  onComplete(rawTrailers: Array<Buffer | string> | null): void {
    try {
      this.handler.onComplete(rawTrailers);
    } finally {
      this.release();
    }
  }

  onError(err: Error): void {
    try {
      this.handler.onError(err);
    } finally {
      this.release();
    }
  }

  private release(): void {
    if (this.over) return;
    this.over = true;
    this.pool.finished(this);
  }
}

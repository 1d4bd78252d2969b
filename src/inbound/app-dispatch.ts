// The one dispatcher abstraction between the inbound's HTTP/1.1 forwarder (app-http1.ts) and a
// client that carries its requests to the app: meshcar's own pool over Node's llhttp
// (app-pool.ts, the default) or undici's Pool (app-undici-pool.ts, `http1: {appClient: undici}`).
// The handler is undici's dispatch handler, so both clients take the same one; and the error
// codes the own client gives its failures, which app-errors.ts turns into answers.

import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { FairQueue } from '../http/fair-queue.js';

/** One request for the app. The framing fields are the client's to write, from `body` and `contentLength`. */
export interface AppRequest {
  readonly method: string;
  /** The request target, origin form (starts with `/`). */
  readonly path: string;
  /** A flat [name, value, ...] list (a repeated field as an array value), without Content-Length or Transfer-Encoding. */
  readonly headers: ReadonlyArray<string | readonly string[]>;
  /** The body, paused; undefined: the request has none. */
  readonly body?: Readable;
  /** The body's declared length (sent as Content-Length and held to it); undefined: chunked. */
  readonly contentLength?: number;
  /**
   * Who asks (the caller's SPIFFE ID): requests waiting for a connection are served caller by
   * caller in turn (src/http/fair-queue.ts), with either client; undefined: all share one turn.
   */
  readonly caller?: string;
  /**
   * A second try after a pooled connection broke under the first: the own pool opens a new
   * connection for it, not another idle one, which went idle with the broken one and is most
   * likely closed too (an app closing idle connections after its own timeout closes them
   * together). undici's pool picks its own connection.
   */
  readonly fresh?: boolean;
}

/** undici's dispatch handler, as much of it as the forwarder uses. */
export interface AppDispatchHandler {
  /**
   * The request waits for a connection (`abort` takes it out of the queue), or has one (`abort`
   * cuts it; no more calls to this handler after): called for each, the later one's abort in force.
   * `socket`: the app's connection, once it has one (the own client): what of the request it
   * still holds is `socket.writableLength` (exchange-deadlines.ts reads it).
   */
  onConnect(abort: () => void, socket?: Socket): void;
  /** The whole request (head and body) has been written. */
  onRequestSent?(): void;
  /** The final answer's head (interim answers are not handed on). `resume` undoes a false from onData. */
  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string): boolean;
  /** A piece of the body; false: the client stops reading the app until `resume`. */
  onData(chunk: Buffer): boolean;
  /** The answer is complete; its trailers as a flat raw list, if any. */
  onComplete(rawTrailers: Array<Buffer | string> | null): void;
  onError(err: Error): void;
  /**
   * Asked when the request's body ends: whether that end is the caller's whole body, and not
   * the end a stream reports when it was reset (Node's Http2Stream does). If not, the request
   * is not finished: its connection is cut, so the app never takes a cut body for a whole one.
   */
  bodyWhole?(body: Readable): boolean;
}

export interface AppPoolOptions {
  readonly host: string;
  readonly port: number;
  /** Connections at most; default 256. */
  readonly maxConnections?: number;
  /** An idle connection closes after this (or sooner when the app's Keep-Alive hint says so); default 30 s. */
  readonly idleTimeoutMs?: number;
  /** A new connection must be up within this, else the request fails with ETIMEDOUT (503); default 10 s. */
  readonly connectTimeoutMs?: number;
  /**
   * Requests that may wait for a connection (inbound.limits.maxAppWaiting); default 1000. Past
   * it the caller with the most waiting gives up its newest (queueFull), or the newcomer does.
   */
  readonly maxWaiting?: number;
}

/** The default of AppPoolOptions.maxWaiting (config inbound.limits.maxAppWaiting's). */
export const DEFAULT_MAX_WAITING = 1000;

export interface AppDispatcher {
  dispatch(request: AppRequest, handler: AppDispatchHandler): void;
  /** Closes every connection; requests still waiting for one fail. */
  close(): void;
  /** Fails the requests still waiting for a connection with APP_CLIENT_ERRORS.notSent; returns how many. */
  refuseWaiting(): number;
}

/**
 * Stable codes of the own client's failures (each also says what happened in its message).
 * Errors of the socket itself keep Node's codes (ECONNREFUSED, ECONNRESET, EPIPE...).
 */
/** What a request refused with APP_CLIENT_ERRORS.notSent is told (an HTTP/1.1 caller's 503). */
export const NOT_SENT = 'the sidecar shut down before the request had a connection to the app: it was not processed and may be sent again';

export const APP_CLIENT_ERRORS = Object.freeze({
  /** The app closed the connection before its answer was complete (FIN; a reset is ECONNRESET). */
  closed: 'APP_CONNECTION_CLOSED',
  /** The caller's body ended short of, or beyond, its Content-Length, or was reset: the request was cut. */
  bodyIncomplete: 'APP_REQUEST_BODY_INCOMPLETE',
  /** A field value holds CR, LF or NUL: nothing was sent. */
  invalidField: 'APP_INVALID_FIELD',
  /** A 101 Switching Protocols to a request that asked for no upgrade. */
  unaskedUpgrade: 'APP_UNASKED_UPGRADE',
  /** More interim (1xx) answers to one request than MAX_INTERIM_ANSWERS (app-answer-judgement.ts). */
  tooManyInterim: 'APP_TOO_MANY_INTERIM',
  /** The pool was closed (reload, shutdown) before the request had a connection. */
  poolClosed: 'APP_POOL_CLOSED',
  /** A drain ran out of time with the request still waiting for a connection: never sent (refused unprocessed). */
  notSent: 'APP_REQUEST_NOT_SENT',
  /** ECONNRESET on a socket of undici's pool, renamed so undici fails the answer (undici-reset-connector.ts). */
  reset: 'APP_CONNECTION_RESET',
  /** maxWaiting requests already wait for a connection: not sent (503 overloaded). */
  queueFull: 'APP_QUEUE_FULL',
});

/**
 * Queues `entry` for a connection within `max` (FairQueue.addWithin): a queued request's cancel
 * takes it out of the queue at once (its first onConnect; the connection's comes later), and
 * the one that gets no place (the newcomer, or the flooding caller's newest) fails queueFull.
 * Both HTTP/1.1 pools queue this way.
 */
export function waitWithin<T extends { readonly handler: AppDispatchHandler }>(queue: FairQueue<T>, max: number, caller: string, entry: T): void {
  const refused = queue.addWithin(max, caller, entry);
  if (refused !== entry) entry.handler.onConnect(() => void queue.delete(entry));
  refused?.handler.onError(queueFullError(max));
}

/** The refusal of a request that found `max` requests waiting for a connection already. */
export function queueFullError(max: number): Error {
  return appClientError(APP_CLIENT_ERRORS.queueFull, `every connection to the app is busy and ${max} requests already wait for one`);
}

export function appClientError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

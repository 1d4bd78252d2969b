// Forwards exchanges to an HTTP/2 app without TLS (h2c, prior knowledge): gRPC servers and
// other HTTP/2 apps. Response trailers are relayed (grpc-status lives there), and a
// trailers-only answer (HEADERS with END_STREAM) stays one to an HTTP/2 caller. A request that
// finds the app's sessions full waits in the pool (h2c-pool.ts) for a slot, and one whose stream
// the app refused (REFUSED_STREAM: not processed) is sent again, with the body kept so far
// (h2c-replay.ts).

import { validateHeaderName, validateHeaderValue } from 'node:http';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import type { Readable } from 'node:stream';
import { endedEarly, watchEarlyEnd } from '../http/early-end.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import { classifyAppError } from './app-errors.js';
import { DONE, STREAMING, WAITING, type Exchange } from './exchange.js';
import { bindExchange, exchangeOf } from './exchange-links.js';
import { awaitBodyEnd, startHeadTimeout, touch } from './exchange-deadlines.js';
import type { AppForwarder } from './forwarder.js';
import { H2cSessionPool, type H2cPoolOptions, type Lease } from './h2c-pool.js';
import { BODY_KEEP_LIMIT, dropKeptBody, keepBody, keptBody, MAX_SENDS, WaitingRequest } from './h2c-replay.js';
import { appHeadersOf, appTrailersOf } from './app-headers.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

// A body's end goes out as (empty) trailers once the caller's body really ended, never from
// end(): Node's close(code) ends the writable side before its RST_STREAM, and without
// waitForTrailers that end is a clean END_STREAM, so an upload the caller broke off would
// reach the app as a complete request (gRPC and chunked uploads carry no length to catch it).
const WITH_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const NO_TRAILERS = Object.freeze({});
const WITHOUT_BODY = Object.freeze({ endStream: true });
const KEEP_OPEN = Object.freeze({ end: false });

const kLease = Symbol('meshcar.inbound.lease');
/** The app's stream limit was known (its SETTINGS had arrived) when the stream went out. */
const kKnownLimit = Symbol('meshcar.inbound.knownLimit');
/** The stream's refusal was told to the pool (once, from 'error' or 'close', whichever comes first). */
const kRefusalTold = Symbol('meshcar.inbound.refusalTold');

interface LeasedStream extends ClientHttp2Stream {
  [kLease]: Lease;
  [kKnownLimit]: boolean;
  [kRefusalTold]?: boolean;
}

export class H2cApp implements AppForwarder {
  readonly label: string;
  readonly pool: H2cSessionPool;
  private readonly authority: string;
  /** Counts the waits for a stream slot and the refused streams (meshcar_app_stream_*_total). */
  readonly observer: TrafficObserver | undefined;

  constructor(address: HostPort, logger: Logger, poolOptions: H2cPoolOptions = {}, observer?: TrafficObserver) {
    this.label = formatHostPort(address);
    this.authority = this.label;
    this.pool = new H2cSessionPool(`http://${this.label}`, logger, poolOptions);
    this.observer = observer;
  }

  forward(exchange: Exchange): void {
    // the exchange's timers (response head, idle) were started by the handler
    exchange.forwarder = this;
    this.send(exchange);
  }

  /** One attempt, now or once a stream slot is free; again for a request the app refused before processing it. */
  send(exchange: Exchange): void {
    const headers = appHeadersOf(exchange);
    headers[':method'] = exchange.method;
    headers[':path'] = exchange.target;
    headers[':scheme'] = 'http';
    headers[':authority'] = exchange.authority ?? this.authority;
    headers.host = undefined; // :authority says it; undefined values are skipped
    const unsendable = unsendableField(headers);
    if (unsendable !== undefined) {
      exchange.fail('bad_request', `header ${JSON.stringify(unsendable)} is not a valid HTTP field (name or value)`);
      return;
    }
    const lease = this.pool.acquire();
    if (lease !== undefined) {
      this.start(exchange, lease);
      return;
    }
    // every session is at the app's stream limit: wait for a slot, within the request's own
    // deadline and the route's timeout, body or not (startHeadTimeout)
    const waiter = new WaitingRequest(exchange, startWaiting, failWaiting, leaveQueue);
    exchange.upstream = waiter; // the exchange's end (deadline, caller gone) cancels it: it leaves the queue
    if (!this.pool.wait(waiter)) {
      exchange.upstream = undefined;
      this.observer?.appStreamWaited?.('queue_full');
      exchange.fail('overloaded', `the app's stream limit is reached on every session and ${this.pool.waiters.max} requests already wait for it`);
      return;
    }
    // held until a stream takes it (pipe() resumes it): the byte counter's 'data' listener
    // (request-dispatch.ts) would have it flowing meanwhile, and those bytes would be lost
    if (exchange.requestHasBody) exchange.requestBody.pause();
    // the held body cannot end, so the route's timeout must start now (an upload would wait for
    // a slot unbounded but for the idle timeout; gRPC calls always have a body)
    startHeadTimeout(exchange);
  }

  /** The stream toward the app, on a slot of `lease`. */
  start(exchange: Exchange, lease: Lease): void {
    exchange.attempts++;
    let stream: ClientHttp2Stream;
    try {
      stream = watchEarlyEnd(lease.session.request(appHeadersOf(exchange), exchange.requestHasBody ? WITH_BODY : WITHOUT_BODY));
    } catch (err) {
      this.pool.release(lease);
      const failure = classifyAppError(err);
      exchange.fail(failure.code, failure.message);
      return;
    }
    (stream as LeasedStream)[kLease] = lease;
    (stream as LeasedStream)[kKnownLimit] = lease.settled;
    exchange.upstream = stream;
    bindExchange(stream, exchange);
    stream.on('response', onResponse);
    stream.on('trailers', onTrailers);
    stream.on('error', onStreamError);
    stream.once('close', onStreamClose);
    if (exchange.expectsContinue) stream.on('continue', onContinue);
    if (exchange.requestHasBody) {
      stream.once('wantTrailers', onWantTrailers);
      const body = exchange.requestBody;
      if (exchange.attempts === 1) {
        // an HTTP/2 caller's trailers come as an event before its body's end
        body.on('trailers', onCallerTrailers);
        keepBody(exchange);
      } else {
        // a replay: what went out before (settle() checked it was all kept), then the rest
        for (const chunk of keptBody(exchange) ?? []) stream.write(chunk);
        if (body.readableEnded) {
          stream.end();
          return;
        }
      }
      body.pipe(stream);
    }
  }

  /** The app refused a stream: sent again, or answered 503 (never "closed the connection": the app only declined it). */
  replay(exchange: Exchange, stream: ClientHttp2Stream): void {
    const kept = exchange.requestHasBody ? keptBody(exchange) : [];
    if (kept !== null && exchange.attempts < MAX_SENDS) {
      if (exchange.requestHasBody) exchange.requestBody.unpipe(stream);
      this.observer?.appStreamRefused?.('replayed');
      this.send(exchange);
      return;
    }
    this.observer?.appStreamRefused?.('answered');
    exchange.fail(
      'upstream_unavailable',
      kept === null
        ? `the app refused the request's stream (REFUSED_STREAM: it did not process it) after more of its body than the ${BODY_KEEP_LIMIT} bytes the sidecar keeps to send again had gone out; it may be retried`
        : `the app refused the request's stream ${exchange.attempts} times (REFUSED_STREAM: it did not process it); it may be retried`,
    );
  }

  close(): void {
    this.pool.close();
  }
}

function startWaiting(exchange: Exchange, lease: Lease): void {
  const app = exchange.forwarder as H2cApp;
  exchange.upstream = undefined; // out of the queue: nothing to leave any more
  app.observer?.appStreamWaited?.('granted');
  // the body flows now: the route's timeout starts again at its end (the caller's still holds)
  awaitBodyEnd(exchange);
  app.start(exchange, lease);
}

function failWaiting(exchange: Exchange, err: Error): void {
  exchange.upstream = undefined;
  (exchange.forwarder as H2cApp).observer?.appStreamWaited?.('failed');
  const failure = classifyAppError(err);
  exchange.fail(failure.code, failure.message);
}

function leaveQueue(waiter: WaitingRequest): void {
  const app = waiter.exchange.forwarder as H2cApp;
  app.pool.waiters.delete(waiter);
  app.observer?.appStreamWaited?.('gave_up');
}

/**
 * The first field Node's http2 client must not be given: a name that is not a token makes it
 * destroy the whole pooled session (every other caller's stream on it fails), and a value with
 * a control character it sends as is. A caller's HTTP/2 codec or HTTP/1.1 parser refuses most
 * such fields first; this keeps one caller's request from ever reaching the shared session.
 */
function unsendableField(headers: OutgoingHttpHeaders): string | undefined {
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a /* ':' */) continue;
    try {
      validateHeaderName(name);
      if (Array.isArray(value)) for (const v of value) validateHeaderValue(name, v);
      else validateHeaderValue(name, String(value));
    } catch {
      return name;
    }
  }
  return undefined;
}

function onResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
  const exchange = exchangeOf(this);
  if (exchange.upstream !== this || exchange.phase !== WAITING) return;
  const status = Number(headers[':status']);
  const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  dropKeptBody(exchange); // answered: no replay any more
  if (!exchange.respond(status, forwardableHeaders(headers), endStream)) {
    if (!endStream) this.resume();
    return;
  }
  this.once('end', onEnd);
  this.pipe(exchange.responseSink, KEEP_OPEN);
  this.on('data', onActivity);
}

/** The caller's body ended: END_STREAM now, unless the exchange was cancelled meanwhile. */
function onWantTrailers(this: ClientHttp2Stream): void {
  if (this.closed || this.destroyed) return; // cancelled: the RST_STREAM follows, no END_STREAM
  const exchange = exchangeOf(this);
  if (exchange.callerGone && exchange.phase !== DONE) {
    this.close(NGHTTP2_CANCEL);
    return;
  }
  // the caller's trailers go on (valid fields only, as the response's do, and none of ours); an
  // HTTP/1.1 caller's are on its request once its body ended
  const trailers = exchange.callerTrailers ?? (exchange.requestBody as { trailers?: IncomingHttpHeaders }).trailers;
  this.sendTrailers(trailers === undefined || isEmpty(trailers) ? NO_TRAILERS : appTrailersOf(trailers));
}

function onCallerTrailers(this: Readable, trailers: IncomingHttpHeaders): void {
  exchangeOf(this).callerTrailers = trailers;
}

function isEmpty(fields: IncomingHttpHeaders): boolean {
  for (const _ in fields) return false;
  return true;
}

function onActivity(this: ClientHttp2Stream, chunk: Buffer): void {
  const exchange = exchangeOf(this);
  touch(exchange);
  exchange.bytesOut += chunk.length;
}

function onTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
  exchangeOf(this).appTrailers = trailers as OutgoingHttpHeaders;
}

function onEnd(this: ClientHttp2Stream): void {
  const exchange = exchangeOf(this);
  // Node's own end for a stream that closed before the app's END_STREAM: a cut body, not a whole one
  if (endedEarly(this)) exchange.broken();
  else exchange.finish(exchange.appTrailers);
}

function onContinue(this: ClientHttp2Stream): void {
  exchangeOf(this).continue();
}

function onStreamError(this: ClientHttp2Stream, err: Error): void {
  settle(this, err);
}

function onStreamClose(this: ClientHttp2Stream): void {
  const lease = (this as LeasedStream)[kLease];
  const exchange = exchangeOf(this);
  const app = exchange.forwarder as H2cApp;
  // told before the slot is freed: a waiting request must not be given it on a suspect session
  if (this.rstCode === NGHTTP2_REFUSED_STREAM) tellRefusal(this as LeasedStream, app);
  app.pool.release(lease);
  // timed out with no answer: the app may be slow, or the session dead without a word
  if (this.rstCode !== NGHTTP2_REFUSED_STREAM && exchange.errorCode === 'upstream_timeout' && exchange.upstream === this) app.pool.probe(lease);
  // a reset with NO_ERROR, or a close without error, before the end of the response
  if (!this.readableEnded) settle(this, undefined);
}

/** Tells the pool once that the app refused this stream (its other streams: the open ones less this one, until it is released). */
function tellRefusal(stream: LeasedStream, app: H2cApp): void {
  if (stream[kRefusalTold] === true) return;
  stream[kRefusalTold] = true;
  const lease = stream[kLease];
  app.pool.refused(lease, stream[kKnownLimit], lease.active - 1);
}

/** The stream failed or closed early: replay, answer an error, or break off the response. */
function settle(stream: ClientHttp2Stream, err: Error | undefined): void {
  const exchange = exchangeOf(stream);
  if (exchange.upstream !== stream) return;
  const app = exchange.forwarder as H2cApp;
  const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM;
  // before any replay: the pool learns from the refusal, so the replay does not land the same way
  if (refused) tellRefusal(stream as LeasedStream, app);
  if (exchange.phase === WAITING) {
    // REFUSED_STREAM (also what a GOAWAY implies for streams past its last ID): the app did
    // not process the request (RFC 9113 §8.7), so it is sent again, body and all
    if (refused) {
      app.replay(exchange, stream);
      return;
    }
    const failure = classifyAppError(err ?? Object.assign(new Error(`stream reset with code ${stream.rstCode}`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
    exchange.fail(failure.code, failure.message);
  } else if (exchange.phase === STREAMING) {
    exchange.broken();
  }
}

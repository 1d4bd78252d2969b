// Forwards exchanges to an HTTP/2 app without TLS (h2c, prior knowledge): gRPC servers and
// other HTTP/2 apps. Response trailers are relayed (grpc-status lives there), and a
// trailers-only answer (HEADERS with END_STREAM) stays one to an HTTP/2 caller.

import { validateHeaderName, validateHeaderValue } from 'node:http';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import type { Readable } from 'node:stream';
import { endedEarly, watchEarlyEnd } from '../http/early-end.js';
import { classifyAppError } from './app-errors.js';
import { bindExchange, DONE, exchangeOf, STREAMING, WAITING, type Exchange } from './exchange.js';
import { touch } from './exchange-deadlines.js';
import type { AppForwarder } from './forwarder.js';
import { H2cSessionPool, type H2cPoolOptions, type Lease } from './h2c-pool.js';
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

interface LeasedStream extends ClientHttp2Stream {
  [kLease]: Lease;
}

export class H2cApp implements AppForwarder {
  readonly label: string;
  readonly pool: H2cSessionPool;
  private readonly authority: string;

  constructor(address: HostPort, logger: Logger, poolOptions: H2cPoolOptions = {}) {
    this.label = formatHostPort(address);
    this.authority = this.label;
    this.pool = new H2cSessionPool(`http://${this.label}`, logger, poolOptions);
  }

  forward(exchange: Exchange): void {
    // the exchange's timers (response head, idle) were started by the handler
    exchange.forwarder = this;
    this.send(exchange);
  }

  /** One attempt; a second only for a bodiless request the app refused before processing it. */
  send(exchange: Exchange): void {
    exchange.attempts++;
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
    let stream: ClientHttp2Stream;
    try {
      stream = watchEarlyEnd(lease.session.request(headers, exchange.requestHasBody ? WITH_BODY : WITHOUT_BODY));
    } catch (err) {
      this.pool.release(lease);
      const failure = classifyAppError(err);
      exchange.fail(failure.code, failure.message);
      return;
    }
    (stream as LeasedStream)[kLease] = lease;
    exchange.upstream = stream;
    bindExchange(stream, exchange);
    stream.on('response', onResponse);
    stream.on('trailers', onTrailers);
    stream.on('error', onStreamError);
    stream.once('close', onStreamClose);
    if (exchange.expectsContinue) stream.on('continue', onContinue);
    if (exchange.requestHasBody) {
      stream.once('wantTrailers', onWantTrailers);
      // an HTTP/2 caller's trailers come as an event before its body's end (a retry's listener is the same function)
      exchange.requestBody.on('trailers', onCallerTrailers);
      exchange.requestBody.pipe(stream);
    }
  }

  close(): void {
    this.pool.close();
  }
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
  app.pool.release(lease);
  if (this.rstCode === NGHTTP2_REFUSED_STREAM) app.pool.refused(lease);
  // timed out with no answer: the app may be slow, or the session dead without a word
  else if (exchange.errorCode === 'upstream_timeout' && exchange.upstream === this) app.pool.probe(lease);
  // a reset with NO_ERROR, or a close without error, before the end of the response
  if (!this.readableEnded) settle(this, undefined);
}

/** The stream failed or closed early: retry, answer an error, or break off the response. */
function settle(stream: ClientHttp2Stream, err: Error | undefined): void {
  const exchange = exchangeOf(stream);
  if (exchange.upstream !== stream) return;
  const app = exchange.forwarder as H2cApp;
  // before any retry: a session that refuses streams on its own is dropped, not picked again
  if (stream.rstCode === NGHTTP2_REFUSED_STREAM) app.pool.refused((stream as LeasedStream)[kLease]);
  if (exchange.phase === WAITING) {
    // REFUSED_STREAM (also what a GOAWAY implies for streams past its last ID): the app did
    // not process the request, so replaying a bodiless one is safe
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM && !exchange.requestHasBody && exchange.attempts < 2) {
      app.send(exchange);
      return;
    }
    const failure = classifyAppError(err ?? Object.assign(new Error(`stream reset with code ${stream.rstCode}`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
    exchange.fail(failure.code, failure.message);
  } else if (exchange.phase === STREAMING) {
    exchange.broken();
  }
}

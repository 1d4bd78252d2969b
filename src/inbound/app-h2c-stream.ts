// The shared listeners of a stream toward an h2c app (app-h2c.ts): the app's answer relayed to
// the exchange (head, body, trailers, 100 Continue, a cut body), the caller's trailers and the
// end of its body sent on, and what a reset or an early close means: the request sent again when
// the app refused it (REFUSED_STREAM, told to the pool once), else an error answer or a
// broken-off response. Separate from app-h2c.ts, which sends a request (now, or once a stream
// slot is free): this is what happens on the stream once it exists. One module-level function
// per event, finding its exchange on the stream (exchange-links.ts): no closures per request.

import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { endedEarly, wholeAtLength } from '../http/early-end.js';
import { failOnApp, mayResendAfterBreak } from './app-failure.js';
import type { H2cApp } from './app-h2c.js';
import { appTrailersOf } from './app-headers.js';
import { DONE, STREAMING, WAITING } from './exchange.js';
import { exchangeOf } from './exchange-links.js';
import { touch } from './exchange-deadlines.js';
import type { Lease } from './h2c-lease.js';
import { dropKeptBody, neverProcessed } from './h2c-replay.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

// the caller's body ended with no trailers: its END_STREAM goes out as empty trailers (why never
// from end(): see WITH_BODY in app-h2c.ts)
const NO_TRAILERS = Object.freeze({});
const KEEP_OPEN = Object.freeze({ end: false });

export const kLease = Symbol('meshcar.inbound.lease');
/** The app's stream limit was known (its SETTINGS had arrived) when the stream went out. */
export const kKnownLimit = Symbol('meshcar.inbound.knownLimit');
/** The stream's refusal was told to the pool (once, from 'error' or 'close', whichever comes first). */
const kRefusalTold = Symbol('meshcar.inbound.refusalTold');
/** The length at which the answer, if it ends early, is still whole (wholeAtLength: -1 for none). */
const kAnswerLength = Symbol('meshcar.inbound.answerLength');

export interface LeasedStream extends ClientHttp2Stream {
  [kLease]: Lease;
  [kKnownLimit]: boolean;
  [kRefusalTold]?: boolean;
  [kAnswerLength]?: number;
}

export function onResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
  const exchange = exchangeOf(this);
  if (exchange.upstream !== this || exchange.phase !== WAITING) return;
  const status = Number(headers[':status']);
  const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  dropKeptBody(exchange); // answered: no replay any more
  if (!exchange.respond(status, forwardableHeaders(headers), endStream)) {
    if (!endStream) this.resume();
    return;
  }
  (this as LeasedStream)[kAnswerLength] = wholeAtLength(headers);
  this.once('end', onEnd);
  this.pipe(exchange.responseSink, KEEP_OPEN);
  this.on('data', onActivity);
}

/** The caller's body ended: END_STREAM now, unless the exchange was cancelled meanwhile. */
export function onWantTrailers(this: ClientHttp2Stream): void {
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

export function onCallerTrailers(this: Readable, trailers: IncomingHttpHeaders): void {
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

export function onTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
  exchangeOf(this).appTrailers = trailers as OutgoingHttpHeaders;
}

function onEnd(this: ClientHttp2Stream): void {
  const exchange = exchangeOf(this);
  // Node's own end for a stream that closed before the app's END_STREAM: a cut body, not a whole
  // one, unless it is all its Content-Length says. Node's http2 server (an h2c app on Node)
  // resets a stream whose request it never read with NO_ERROR once its answer is handed over,
  // and nghttp2 sends that reset ahead of the END_STREAM still waiting for our window: under
  // backpressure most of 50 concurrent 10 MB downloads came whole and were reset toward the
  // caller. Without a length such a body may be short (the reset overtakes DATA too): still cut;
  // so is one whose trailers were still due (wholeAtLength)
  if (endedEarly(this) && (this as LeasedStream)[kAnswerLength] !== exchange.bytesOut) exchange.broken();
  else exchange.finish(exchange.appTrailers);
}

export function onContinue(this: ClientHttp2Stream): void {
  exchangeOf(this).continue();
}

/**
 * The app closed the stream while our upload on it was unfinished. With an error code Node
 * destroys the stream itself; with NO_ERROR (Node's http2 server resets so a stream whose
 * handler answered without reading the body) it waits for the upload to finish, which it
 * never does on a closed stream: the stream never closed, and the exchange stayed in flight,
 * recorded as a reset at the idle timeout (a review: a 200,000-byte upload, over the app's
 * window). Destroyed once the answer is read: 'close' then comes, and onStreamClose goes on.
 */
export function onAppClosedUpload(this: ClientHttp2Stream): void {
  if (this.rstCode !== NGHTTP2_NO_ERROR || this.destroyed) return;
  if (this.readableEnded) this.destroy();
  else this.once('end', destroyAppStream);
}

function destroyAppStream(this: ClientHttp2Stream): void {
  this.destroy();
}

export function onStreamError(this: ClientHttp2Stream, err: Error): void {
  settle(this, err);
}

export function onStreamClose(this: ClientHttp2Stream): void {
  const lease = (this as LeasedStream)[kLease];
  const exchange = exchangeOf(this);
  const app = exchange.forwarder as H2cApp;
  // told before the slot is freed: a waiting request must not be given it on a suspect session
  if (this.rstCode === NGHTTP2_REFUSED_STREAM) tellRefusal(this as LeasedStream, app);
  app.pool.release(lease, exchange.caller.id.uri);
  // timed out, before its answer or in it (an answer gone quiet for the idle timeout: recorded
  // so, not as a reset): the app may be slow, or the session dead without a word
  if (this.rstCode !== NGHTTP2_REFUSED_STREAM && exchange.errorCode === 'upstream_timeout' && exchange.upstream === this) app.pool.probe(lease);
  // a reset with NO_ERROR, or a close without error, before the end of the response or before
  // any answer at all: Node ends the readable side of a stream reset with NO_ERROR itself, so an
  // ended stream with no answer is no answer (it waited for the route's timeout, a 504)
  if (!this.readableEnded || exchange.phase === WAITING) settle(this, undefined);
}

/** Tells the pool once that the app refused this stream (its other streams: the open ones less this one, until it is released). */
function tellRefusal(stream: LeasedStream, app: H2cApp): void {
  if (stream[kRefusalTold] === true) return;
  stream[kRefusalTold] = true;
  const lease = stream[kLease];
  app.pool.refused(lease, stream[kKnownLimit], lease.active - 1);
}

/**
 * The app's bytes broke HTTP/2 before its first SETTINGS (which must open an HTTP/2 server's
 * side): most often an HTTP/1.1 server, whose "HTTP/1.1 400" nghttp2 reads as a bad frame.
 */
function brokeBeforeSettings(stream: ClientHttp2Stream, err: Error | undefined): boolean {
  return (err as { code?: unknown } | undefined)?.code === 'ERR_HTTP2_ERROR' && !(stream as LeasedStream)[kLease].settled;
}

const NO_SETTINGS_FIRST = '; no HTTP/2 SETTINGS came from it first: an HTTP/1.1 server behind an h2c:// inbound.app? meshcar doctor names what it speaks';

/**
 * The stream's session, one that had worked (the app's SETTINGS came), was destroyed under it:
 * its connection lost, not ended by the app's GOAWAY. Not one that never got the app's SETTINGS
 * (it failed for its own reason, h2c-first-settings.ts), nor one the pool dropped after an
 * unanswered PING (the app, stalled, may be working on its requests).
 */
function sessionBroke(stream: ClientHttp2Stream): boolean {
  const lease = (stream as LeasedStream)[kLease];
  return lease.settled && lease.session.destroyed && !lease.goaway && !lease.discarded;
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
    // REFUSED_STREAM, or above the last id of the app's GOAWAY (whatever its code): the app did
    // not process the request (RFC 9113 §8.7), so it is sent again, body and all
    if (neverProcessed(stream, (stream as LeasedStream)[kLease])) {
      app.replay(exchange, stream);
      return;
    }
    // the session broke under it with no answer and no GOAWAY (the app's connection reset or
    // closed): as a pooled HTTP/1.1 connection the app had closed (app-http1.ts), a request safe
    // to repeat, with no body, is sent once more, on another session; it was a 502 blamed on a
    // stream reset (CANCEL) where the app had only dropped an idle connection
    if (sessionBroke(stream) && mayResendAfterBreak(exchange)) {
      app.send(exchange);
      return;
    }
    failOnApp(exchange, err ?? Object.assign(new Error(`stream reset with code ${stream.rstCode}`), { code: 'ERR_HTTP2_STREAM_ERROR' }), app.toldAddress, brokeBeforeSettings(stream, err) ? NO_SETTINGS_FIRST : '');
  } else if (exchange.phase === STREAMING) {
    exchange.broken();
  }
}

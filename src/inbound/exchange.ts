// One request from an authenticated caller, from arrival to its last byte, whatever the
// caller's protocol: the app forwarders talk to this class only, and the HTTP/1.1 and HTTP/2
// subclasses translate. It owns the request's phases, the sidecar's own error answers, and
// the single report to the observer; its deadlines (the app must answer within the inbound
// timeout; bytes must move within the idle timeout) are in exchange-deadlines.ts, the shared
// listeners that move its body bytes in exchange-relay.ts, what it is linked to (context, app
// request, sink, the symbol listeners find it by) in exchange-links.ts, the fields it records
// as it goes (status, bytes, deadline books) in exchange-record.ts, and the record its report
// carries in exchange-report.ts.
//
// Phases: WAITING for the app's response head → STREAMING its body → DONE. Every failure
// path first checks and sets the phase, so a late event (an app error after a timeout, a
// caller hanging up after the end) does nothing twice.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors.js';
import { requestIdOf } from '../http/request-id.js';
import { bodylessStatus, dropContentLength, forwardableTrailers, saysNoContent, zeroContentLength } from '../http/response-fields.js';
import { errorBodyBytes, grpcAnswerType, grpcStatusFor, statusFor } from '../http/status.js';
import { grpcStatusIn, grpcStatusStart } from '../http/grpc-status.js';
import type { Caller } from './caller.js';
import { stopHeadDeadline, stopIdleDeadline } from './exchange-deadlines.js';
import { cancelAppRequest, type ExchangeContext, type ResponseSink } from './exchange-links.js';
import { ExchangeRecord } from './exchange-record.js';
import { reportFinished } from './exchange-report.js';
import { isOwnDeadline, warnStreamCut } from './stream-cut-log.js';
import { pathOf } from '../http/request-target.js';

export const WAITING = 0;
export const STREAMING = 1;
export const DONE = 2;

export abstract class Exchange extends ExchangeRecord {
  /** The path without query, as authorization and the access log see it. */
  readonly path: string;
  readonly requestId: string;
  phase = WAITING;
  private finalized = false;
  private reported = false;
  /** 100 Continue was sent: a second one (the app's, after the schema check sent its own) is dropped. */
  private continued = false;
  /** The answer was broken off (or its caller went): nothing is left for the caller to take. */
  private brokenOff = false;

  constructor(
    readonly caller: Caller,
    readonly context: ExchangeContext,
    readonly method: string,
    /** The request target as received: path and query. */
    readonly target: string,
    headers: IncomingHttpHeaders,
  ) {
    super();
    this.path = pathOf(target);
    this.requestId = requestIdOf(headers);
    this.grpcStatus = grpcStatusStart(headers['content-type']);
  }

  abstract readonly requestHeaders: IncomingHttpHeaders;
  /** Host (HTTP/1.1) or :authority (HTTP/2) as the caller sent it. */
  abstract readonly authority: string | undefined;
  /** The request body, to pipe toward the app (only when requestHasBody). */
  abstract readonly requestBody: Readable;
  abstract readonly requestHasBody: boolean;
  abstract readonly expectsContinue: boolean;
  abstract readonly responseSink: ResponseSink;
  abstract readonly headersSent: boolean;
  /** The caller's connection or stream is gone: nothing can be answered any more. */
  abstract readonly callerGone: boolean;
  /** The HTTP/1.1 connection, for per-connection request counts; undefined for HTTP/2. */
  abstract readonly http1Socket: Socket | undefined;
  /** respond() may be given a list from forwardableResponseList (no object in between). */
  abstract readonly takesHeaderList: boolean;

  /** Sends the response head; returns whether a body follows. May throw on headers HTTP refuses. */
  /** `headers`: an object, or a list made by forwardableResponseList (slot 1 free for the status). */
  protected abstract writeHead(status: number, headers: OutgoingHttpHeaders | string[], endStream: boolean, statusMessage: string | undefined, mayHaveTrailers: boolean): boolean;
  protected abstract writeEnd(trailers: OutgoingHttpHeaders | undefined): void;
  protected abstract writeContinue(): void;
  /** The sidecar's own answer; `grpcType`: the caller speaks gRPC, answer trailers-only (src/http/status.ts). */
  protected abstract writeError(code: ErrorCode, message: string, retryAfterSeconds: number | undefined, grpcType: string | undefined): void;
  /** Breaks off a response whose head is already sent (the caller sees a reset, not a short body). */
  protected abstract reset(): void;
  /** HTTP/2: the caller's stream reset REFUSED_STREAM (true); HTTP/1.1 has no such answer (false). */
  protected abstract refuseStream(): boolean;

  /**
   * Relays the app's response head. Returns whether to stream a body after it.
   * `mayHaveTrailers` false: the app's framing cannot carry trailers (an HTTP/1.1 body with a
   * Content-Length), so an HTTP/2 caller's stream ends with its last DATA frame, no wait.
   */
  respond(status: number, headers: OutgoingHttpHeaders | string[], endStream: boolean, statusMessage?: string, mayHaveTrailers = true): boolean {
    if (this.phase !== WAITING) return false;
    // undici, Node's HTTP/1.1 client and nghttp2 take any three digits; RFC 9110 §15 defines
    // 100-599 and HTTP/2 carries nothing else: an HTTP/1.1 caller must not get a 999 that its
    // HTTP/2 twin would get as a 502
    if (status > 599) {
      this.fail('bad_gateway', `the app answered with status ${status}, outside 100-599`);
      return false;
    }
    stopHeadDeadline(this);
    // the header says "a sidecar answered this" (the outbound judges the endpoint by it): never
    // the app's word (a list from forwardableResponseList comes without it)
    if (!Array.isArray(headers) && headers['x-meshcar-error'] !== undefined) delete headers['x-meshcar-error'];
    // a 204 announcing content: an HTTP/2 caller's codec would reset the stream
    if (bodylessStatus(status)) dropContentLength(headers);
    // a 205 with content (RFC 9110 §15.3.6 forbids it) leaves the app's client reading a body
    // the caller never gets: unframed, or short of its length, it held the app connection,
    // its pool slot and its queue, until the app closed it; only `Content-Length: 0` keeps it
    const cutApp = status === 205 && !endStream && this.method !== 'HEAD' && !saysNoContent(headers);
    if (status === 205) zeroContentLength(headers);
    // the answer to HEAD, 204, 205 and 304 have no body whatever they announce (RFC 9110
    // §6.4.1): the answer is complete now, whatever the app's client makes of a length it
    // announced and never sent (and the HTTP/2 codecs end such a stream with its head: a
    // stream left waiting for trailers would be held until the upload or the idle timeout ends)
    if (status === 204 || status === 205 || status === 304 || this.method === 'HEAD') endStream = true;
    let body: boolean;
    try {
      body = this.writeHead(status, headers, endStream, statusMessage, mayHaveTrailers);
    } catch (err) {
      this.fail('bad_gateway', `the app's response cannot be forwarded: ${(err as Error).message}`);
      return false;
    }
    this.status = status;
    // a trailers-only answer (NOT_FOUND before any message) has its grpc-status in a head that
    // ends the answer; in one with more to come it is not the call's status (its trailers are)
    if (this.grpcStatus === null && endStream) this.grpcStatus = grpcStatusIn(headers);
    if (body) this.phase = STREAMING;
    else this.phase = DONE;
    if (cutApp) cancelAppRequest(this.upstream);
    return body;
  }

  /**
   * The app's body ended: ends the response, with the app's trailers if it sent any (less those
   * no trailer may be, or that are not valid fields: one bad field must not cut the response).
   * `ours`: the trailers are the sidecar's own (a drain's cut, with its x-meshcar-error).
   */
  finish(trailers?: OutgoingHttpHeaders, ours = false): void {
    if (this.phase !== STREAMING) return;
    this.phase = DONE;
    if (this.grpcStatus === null) this.grpcStatus = grpcStatusIn(trailers);
    const fields = trailers === undefined ? undefined : forwardableTrailers(trailers);
    // only a sidecar says it answered: an app's own x-meshcar-error goes, from trailers as
    // from the head (a gRPC client would take the app's for a sidecar's cut, as a drain's is)
    if (!ours && fields?.['x-meshcar-error'] !== undefined) delete fields['x-meshcar-error'];
    // the idle timer runs on until the caller has taken the answer (callerClosed): a caller
    // whose window stays shut would otherwise hold the stream, its buffered bytes, a
    // concurrency slot and a graceful close for ever (exchange-deadlines.ts checks progress)
    this.writeEnd(fields);
    this.deliveredAtCheck = this.deliveryMark;
  }

  /**
   * Grows as the caller takes the answer once nothing more is written: here what the caller's
   * side holds going down (an HTTP/1.1 response's buffers include its socket's); HTTP/2
   * exchanges add the bytes sent (http2-exchange.ts), as a chunk's buffer is released only
   * once all of it went out.
   */
  get deliveryMark(): number {
    return -((this.responseSink as { writableLength?: number }).writableLength ?? 0);
  }

  /** The answer (the app's, or the sidecar's own) is all written, and the caller has not taken all of it yet. */
  get awaitingDelivery(): boolean {
    return this.phase === DONE && !this.finalized && !this.brokenOff;
  }

  /** The caller took none of its answer for the idle timeout: reset, as a stalled app is. */
  callerStalled(): void {
    stopIdleDeadline(this);
    this.errorCode = 'reset';
    this.brokenOff = true;
    // whatever status the answer ended with, the caller never got it
    if (this.grpcStatus !== undefined) this.grpcStatus = null;
    this.reset();
  }

  /** The app sent 100 Continue (or the schema check wants the body): tell the caller to send it, once. */
  continue(): void {
    if (this.phase === WAITING && !this.headersSent && !this.continued) {
      this.continued = true;
      this.writeContinue();
    }
  }

  /**
   * A request the sidecar gives up before it was sent to the app (a drain out of time found it
   * waiting for a connection or a stream slot): never processed. An HTTP/2 caller's stream is
   * reset REFUSED_STREAM (RFC 9113 §8.7), which its sidecar sends again elsewhere whatever the
   * method (cut with its session, it was a 502 the caller had to take as maybe processed); an
   * HTTP/1.1 caller gets 503 upstream_unavailable saying so.
   */
  refuseUnsent(message: string): void {
    const phase = this.phase;
    if (phase === DONE) return;
    // DONE first: Node emits 'aborted' on a stream we close, which is not the caller's reset
    this.phase = DONE;
    if (!this.callerGone && !this.headersSent && this.refuseStream()) {
      stopHeadDeadline(this);
      stopIdleDeadline(this);
      this.errorCode = 'upstream_unavailable';
      this.status = statusFor('upstream_unavailable');
      return;
    }
    this.phase = phase;
    this.fail('upstream_unavailable', message);
  }

  /**
   * The sidecar answers itself (JSON error + x-meshcar-error, and Retry-After when
   * `retryAfterSeconds` is given), or resets if the head went out.
   */
  fail(code: ErrorCode, message: string, retryAfterSeconds?: number): void {
    if (this.phase === DONE) return;
    this.phase = DONE;
    stopHeadDeadline(this);
    cancelAppRequest(this.upstream);
    if (this.callerGone) {
      // the caller went first (e.g. a drain that ran out of time): that is the story, not
      // whatever the app connection reported after it
      stopIdleDeadline(this);
      this.errorCode = 'reset';
      this.brokenOff = true;
      return;
    }
    if (this.headersSent) {
      stopIdleDeadline(this);
      this.brokenOff = true;
      // our own idle deadline cut a started answer (a quiet SSE stream): recorded with its code,
      // not as a reset (a caller that left, an app that crashed), and logged naming the key to raise
      if (isOwnDeadline(code)) {
        this.errorCode = code;
        warnStreamCut(this.context.streamCuts, this.context.logger, this, message);
      } else this.errorCode = 'reset';
      this.reset();
      return;
    }
    this.errorCode = code;
    const grpcType = grpcAnswerType(this.requestHeaders['content-type']);
    // a gRPC caller gets 200 and grpc-status on the wire; metrics count the status the error stands for
    this.status = statusFor(code);
    // our own trailers-only gRPC answer (gRPC-Web callers get one too, but are not counted as gRPC)
    if (this.grpcStatus !== undefined) this.grpcStatus = grpcStatusFor(code);
    this.bytesOut += errorBodyBytes({ code, message }, this.requestId, grpcType, this.method);
    this.writeError(code, message, retryAfterSeconds, grpcType);
    // our own answer must be taken too: the idle clock runs on from now (exchange-deadlines.ts)
    this.lastActivity = performance.now();
    this.deliveredAtCheck = this.deliveryMark;
  }

  /** The app reset or vanished mid-response: the caller must see the failure, not a short body. */
  broken(): void {
    if (this.phase === DONE) return;
    this.phase = DONE;
    stopHeadDeadline(this);
    stopIdleDeadline(this);
    this.errorCode = 'reset';
    this.brokenOff = true;
    cancelAppRequest(this.upstream);
    this.reset();
  }

  /** The app agreed to switch protocols (101): from now on the exchange is a byte tunnel. */
  switchProtocols(): boolean {
    if (this.phase !== WAITING) return false;
    stopHeadDeadline(this);
    // a tunnel (WebSocket) may rightly stay quiet for long: the request's idle timeout gives way
    // to the tunnel's own (inbound.tunnelIdleTimeout, on the caller's socket: see Http1Exchange)
    stopIdleDeadline(this);
    this.phase = STREAMING;
    this.status = 101;
    // recorded now, as on the outbound: the tunnel's lifetime is not the request's duration
    this.report();
    return true;
  }

  /** The caller's own deadline for the request (startTimers): an HTTP/2 exchange tells its codec too. */
  setCallerDeadline(ms: number | undefined): void {
    this.callerDeadlineMs = ms;
  }

  /** The tunnel closed (either side): the exchange is over. */
  tunnelClosed(): void {
    this.phase = DONE;
    this.callerClosed();
  }

  /** Called exactly when the caller's side of the exchange has closed: reports it once. */
  callerClosed(): void {
    if (this.finalized) return;
    this.finalized = true;
    stopHeadDeadline(this);
    stopIdleDeadline(this);
    if (this.phase !== DONE) {
      // the caller hung up (or its stream was reset) before the exchange completed
      this.phase = DONE;
      this.errorCode ??= 'reset';
      cancelAppRequest(this.upstream);
    } else if (this.upstream !== undefined && !this.upstream.writableFinished) {
      // the app answered before the caller's upload ended; nobody will finish that upload
      cancelAppRequest(this.upstream);
    }
    this.context.tracker.requestDone(this.http1Socket);
    if (this.grpcStatus !== undefined) this.context.tracker.grpcCallDone(this);
    this.report();
  }

  /** The one record (exchange-report.ts): at the caller's close, a tunnel's at its 101. */
  private report(): void {
    if (!this.reported) reportFinished(this, this.context.observer, this.context.tracker.cutBy);
    this.reported = true;
  }
}

// One h2c stream from the app (HTTP/2 with prior knowledge, e.g. a gRPC client), carried to
// its upstream as a stream on a pooled mTLS session: the h2c side of the attempt controller
// (attempt.ts owns deadline, attempts, retries, failure). Both directions are piped (HTTP/2
// flow control on each side is the backpressure) and trailers cross intact both ways:
// responses with a body are sent with waitForTrailers and finished with the upstream's
// trailers, or an empty END_STREAM when it sent none, so gRPC's grpc-status arrives where the
// client expects it. A trailers-only answer (HEADERS with END_STREAM) is relayed as exactly that.

import { constants as h2, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { describeError, MeshcarError } from '../errors.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { bodylessStatus, dropContentLength, forwardableTrailers } from '../http/response-fields.js';
import { grpcAnswerType, grpcErrorTrailers, grpcStatusFor, sendStreamError } from '../http/status.js';
import { countBody, type OutboundContext } from './exchange.js';
import { pathOnly, routableAuthorityProblem } from './router.js';
import { responseEnds, wasReset, type UpstreamStream } from './upstream-stream.js';
import { Attempt } from './attempt.js';
import { attemptOf, bindAttempt } from './attempt-events.js';
import { bodyCut } from './attempt-answer.js';
import { upstreamHeaders } from './attempt-head.js';
import { declaresEmptyBody, holdUntilEnd, type HeldRequest } from './empty-body-hold.js';

const NO_BODY = Object.freeze({ endStream: true });
const WITH_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const RESPOND_END = Object.freeze({ endStream: true });
const RESPOND_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const CONTINUE = Object.freeze({ ':status': 100 });
const PIPE_NO_END = Object.freeze({ end: false });
const NO_TRAILERS: OutgoingHttpHeaders = Object.freeze({}) as OutgoingHttpHeaders;
const EMPTY = Buffer.alloc(0);

class H2cAttempt extends Attempt implements HeldRequest {
  readonly appBody: ServerHttp2Stream;
  /** The app's request trailers (read as they come: the app may finish before an upstream stream exists). */
  requestTrailersIn: OutgoingHttpHeaders = NO_TRAILERS;
  /** The upstream's response trailers, sent on the app stream's 'wantTrailers'. */
  responseTrailers: OutgoingHttpHeaders = NO_TRAILERS;
  /** The upstream head of a request held until its stream ends (empty-body-hold.ts). */
  private heldHead: OutgoingHttpHeaders | string[] | undefined = undefined;

  constructor(ctx: OutboundContext, readonly stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders, schema: SchemaResult | undefined, preread: Buffer | undefined, prereadTrailers: IncomingHttpHeaders | undefined) {
    super(ctx, reqHeaders, reqHeaders[':method'] ?? 'GET', schema, preread);
    this.appBody = stream;
    // the body was read whole by the OpenAPI check (schema-check.ts): its trailers came then
    if (prereadTrailers !== undefined) this.requestTrailersIn = requestTrailersOf(prereadTrailers);
  }

  start(): void {
    const { stream, reqHeaders } = this;
    const method = this.exchange.method;
    const path = reqHeaders[':path'];
    if (path !== undefined) this.exchange.path = pathOnly(path);
    const authority = reqHeaders[':authority'] ?? reqHeaders.host;
    bindAttempt(stream, this);
    stream.on('close', onAppClose);
    const authorityRefused = routableAuthorityProblem(authority);
    if (authorityRefused !== undefined) {
      this.fail(new MeshcarError('bad_request', authorityRefused));
      return;
    }
    if (!this.route(authority, path ?? '/', 'the request names no :authority')) return;
    if (path === undefined || method === 'CONNECT') {
      this.fail(new MeshcarError('bad_request', 'CONNECT is not supported on the outbound listener'));
      return;
    }
    const headers = upstreamHeaders(this, method, path, authority);
    const hasBody = !stream.endAfterHeaders;
    // listened for now: the app may finish its body and trailers before the upstream stream exists
    if (hasBody) stream.on('trailers', onAppTrailers);
    // content-length: 0 with the stream left open: sent once it ends (its body read ahead, empty)
    if (hasBody && !this.piped && declaresEmptyBody(reqHeaders['content-length'])) {
      this.heldHead = headers;
      holdUntilEnd(stream, this);
      return;
    }
    this.send(headers, hasBody ? WITH_BODY : NO_BODY, hasBody, hasBody);
  }

  sendHeld(): void {
    const headers = this.heldHead;
    if (headers === undefined) return;
    this.heldHead = undefined;
    // as a body read ahead (the OpenAPI check): whole, replayed as is; trailers need a body to end
    this.piped = true;
    this.body = [EMPTY];
    const trailers = this.requestTrailersIn !== NO_TRAILERS;
    this.send(headers, trailers ? WITH_BODY : NO_BODY, trailers, trailers);
  }

  protected appGone(): boolean {
    return this.stream.closed || this.stream.destroyed;
  }

  answerComplete(): boolean {
    return this.stream.writableEnded;
  }

  /**
   * Answered in full while the app is still uploading, and the upstream takes no more: read the
   * rest of the upload and drop it, so the app's stream completes normally instead of waiting
   * on flow control forever (what Node's HTTP/1.1 server does with an unread body).
   */
  keepCompleteAnswer(): void {
    this.dropRestOfUpload();
    this.closeUnfinishedUpload();
  }

  /** The app's upload, if still coming, goes nowhere now: read and dropped so its stream can complete. */
  private dropRestOfUpload(): void {
    const stream = this.stream;
    if (stream.readableEnded || stream.closed) return;
    if (this.upstream) stream.unpipe(this.upstream);
    stream.resume();
  }

  // the head is out: a gRPC answer ends with our status in its trailers (UNAVAILABLE when the
  // upstream broke off, DEADLINE_EXCEEDED when it went quiet) and x-meshcar-error, which a gRPC
  // client reads as the call's status (a bare reset reads as INTERNAL, or CANCELLED); a message
  // cut in its middle still fails the call. Any other answer is reset, so the app sees it
  // incomplete (never as whole).
  protected cutAnswer(err: MeshcarError, rstCode: number | undefined): void {
    const stream = this.stream;
    if (stream.closed) return;
    this.exchange.errorCode = err.code;
    if (!stream.writableEnded && !stream.destroyed && grpcAnswerType(this.reqHeaders['content-type']) === 'application/grpc') {
      if (this.upstream) this.upstream.unpipe(stream);
      this.responseTrailers = grpcErrorTrailers(err);
      this.exchange.grpcStatus = grpcStatusFor(err.code);
      stream.end();
      // an app that does not read would hold the stream open behind flow control: reset it then
      setTimeout(resetUnfinished, CUT_TRAILERS_GRACE_MS, stream).unref();
      return;
    }
    // reset: whatever status the upstream's trailers had, the app gets none
    if (this.exchange.grpcStatus !== undefined) this.exchange.grpcStatus = null;
    stream.close(rstCode || h2.NGHTTP2_INTERNAL_ERROR);
  }

  protected sendError(err: MeshcarError, grpcType: string | undefined): void {
    // as the OpenAPI refusal does (schema-check.ts): an upload left paused (a retry's wait
    // pauses it) or never piped would hold the app's stream behind flow control for ever
    this.dropRestOfUpload();
    const fault = sendStreamError(this.stream, err, this.exchange.requestId, grpcType);
    if (fault !== undefined) this.ctx.logger.error({ code: err.code, err: describeError(fault) }, 'the error answer could not be sent (the stream was reset instead)');
    else this.closeUnfinishedUpload();
  }

  /**
   * Our answer is whole and the app's upload is not: its stream is closed with NO_ERROR (RFC
   * 9113 §8.1) once the upload has been quiet for the idle timeout (the upstream's, or 1 s with
   * no upstream). An app still sending is let finish, its bytes read and dropped: Node's client
   * keeps a stream reset while its writes are pending open for ever. One that stopped held the
   * stream, its record, the connection's idle close and the drain until it closed its connection.
   */
  private closeUnfinishedUpload(): void {
    const stream = this.stream;
    // bodyDone: no body, or its end came (a GET's stream is never read to its 'end')
    if (this.bodyDone || stream.readableEnded || stream.destroyed || stream.closed) return;
    stream.setTimeout(this.pool?.idleTimeoutMs ?? QUIET_UPLOAD_NO_UPSTREAM_MS, closeQuietUpload);
  }

  writeHead(status: number, head: IncomingHttpHeaders, flags: number | boolean): boolean {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) {
      this.upstream?.close(h2.NGHTTP2_CANCEL);
      return false;
    }
    const out = forwardableHeaders(head);
    if (bodylessStatus(status)) dropContentLength(out);
    out[':status'] = status;
    try {
      stream.respond(out, responseEnds(flags) ? RESPOND_END : RESPOND_BODY);
    } catch (err) {
      this.headUnrelayable(err);
      return false;
    }
    return true;
  }

  relayBody(up: UpstreamStream, flags: number | boolean): void {
    if (responseEnds(flags)) {
      up.resume();
      return;
    }
    this.stream.on('wantTrailers', onAppWantTrailers);
    // Node ends a reset stream's readable side like a finished one: check the code at the end
    up.pipe(this.stream, PIPE_NO_END);
    countBody(up, this.exchange, 'out');
    up.on('end', onUpstreamEnd);
  }

  upstreamTrailers(trailers: IncomingHttpHeaders): void {
    this.responseTrailers = forwardableTrailers(trailers);
  }

  requestTrailers(): OutgoingHttpHeaders {
    return this.requestTrailersIn;
  }

  protected pipeBody(up: UpstreamStream): void {
    // an app that resets its stream mid-body must not look like one that finished it
    this.stream.pipe(up, PIPE_NO_END);
    countBody(this.stream, this.exchange, 'in');
    this.stream.on('end', onAppEnd);
  }

  pipeRestOfBody(up: UpstreamStream): void {
    // onAppEnd ends it, as the current attempt's pipedTo
    this.stream.pipe(up, PIPE_NO_END);
  }

  sendContinue(): void {
    if (!this.stream.headersSent && !this.stream.closed) this.stream.additionalHeaders(CONTINUE);
  }
}

/** How long an upload no upstream takes (a 404 no_route) may stay quiet after our answer before its stream is closed. */
const QUIET_UPLOAD_NO_UPSTREAM_MS = 1_000;

function closeQuietUpload(this: ServerHttp2Stream): void {
  if (!this.closed && !this.destroyed) this.close(h2.NGHTTP2_NO_ERROR);
}

/** How long a cut gRPC answer may take to deliver its trailers to an app that reads slowly. */
const CUT_TRAILERS_GRACE_MS = 5_000;

function resetUnfinished(stream: ServerHttp2Stream): void {
  if (!stream.closed && !stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
}

/**
 * The app's stream closed. Whole (our answer complete, its body ended without a reset): the
 * upload may still be on its way to an upstream that answered early and reads on, and
 * cancelling cut the last window of it (a review: 180,111 of 200,000 bytes, then CANCEL). Else
 * the app left: the upstream's work is not wanted.
 */
function onAppClose(this: ServerHttp2Stream): void {
  const attempt = attemptOf(this);
  const whole = this.rstCode === h2.NGHTTP2_NO_ERROR && !this.aborted && this.readableEnded && attempt.answerComplete();
  attempt.appClosed(!whole, whole);
}

function onAppTrailers(this: ServerHttp2Stream, trailers: IncomingHttpHeaders): void {
  attemptOf<H2cAttempt>(this).requestTrailersIn = requestTrailersOf(trailers);
}

/**
 * The app's request trailers as they go upstream: fields that may not be trailers (RFC 9110
 * §6.5.1: content-length, host, authorization...) dropped as from response trailers, so an
 * upstream that is not a meshcar inbound (which drops them too) never reads them.
 */
function requestTrailersOf(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return forwardableTrailers(forwardableHeaders(trailers));
}

function onAppWantTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(attemptOf<H2cAttempt>(this).responseTrailers);
}

/**
 * The app's body ended: the upstream's request ends too, unless the app reset it. Node ends a
 * reset stream's body as if whole (its end pushed at the close, whatever the code); the
 * listener refuses that end (refuseEarlyEnd: the stream is destroyed, 'close' comes alone, and
 * onAppClose cancels the upstream), so the peer's app never takes a broken-off upload as
 * whole. A reset still seen here (its code set, or the stream aborted, by the time the end is
 * read) cancels: this comes before the app stream's 'close', so the cancelled upstream's end
 * does not read as the endpoint failing, nor the record as our 502 (attempt.ts fail()).
 */
function onAppEnd(this: ServerHttp2Stream): void {
  const attempt = attemptOf(this);
  const up = attempt.pipedTo;
  if (up === undefined || up !== attempt.upstream) return;
  // broken off: the app left (cancelUpstream: the stream's end is no failure of its endpoint)
  if (wasReset(this.rstCode) || this.aborted) attempt.cancelUpstream();
  else if (!up.destroyed) up.end();
}

function onUpstreamEnd(this: UpstreamStream): void {
  const attempt = attemptOf<H2cAttempt>(this);
  if (!bodyCut(attempt, this)) attempt.stream.end();
}

export function forwardH2c(ctx: OutboundContext, stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders, schema?: SchemaResult, preread?: Buffer, prereadTrailers?: IncomingHttpHeaders): void {
  new H2cAttempt(ctx, stream, reqHeaders, schema, preread, prereadTrailers).start();
}

// One HTTP/1.1 request from the app, carried to its upstream as an HTTP/2 stream on a pooled
// mTLS session, and the answer carried back: the HTTP/1.1 side of the attempt controller
// (attempt.ts owns deadline, attempts, retries, failure). Bodies are piped both ways, so flow
// control on each hop is the backpressure; nothing is buffered here beyond a retry's replay.
// Chunked request trailers travel as HTTP/2 trailers; response trailers go back on chunked
// responses; `Expect: 100-continue` is relayed (the upstream's 100 becomes ours). Failures
// before the response head become JSON errors (x-meshcar-error); after it, the connection is
// cut, since a status was already promised. An upload still going when the answer is complete
// is watched to its end (forward-http1-upload.ts): the app's connection closing first, or the
// upload standing still, cancels the upstream stream.

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { describeError, MeshcarError } from '../errors.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { announcesBody, transferCodingProblem } from '../http/body-framing.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { forwardableFieldList } from '../http/raw-headers.js';
import { closesAfterAnswers } from './app-connections.js';
import { bodylessStatus, dropContentLength, forwardableTrailers } from '../http/response-fields.js';
import { hostFieldProblem } from '../http/host-field.js';
import { expectationError } from '../http/expectation.js';
import { errorBodyBytes, grpcAnswerType, grpcStatusFor, sendError, statusFor } from '../http/status.js';
import { countBody, type OutboundContext } from './exchange.js';
import { parseRequestTarget, pathOnly, targetAuthorityProblem } from './router.js';
import { responseEnds, type UpstreamStream } from './upstream-stream.js';
import { Attempt } from './attempt.js';
import { attemptOf, bindAttempt } from './attempt-events.js';
import { bodyCut } from './attempt-answer.js';
import { upstreamHeaders } from './attempt-head.js';
import { probeWhilePaused, upstreamDoneWithUpload, watchUpload, type UploadAttempt } from './forward-http1-upload.js';
import { lingeringClose } from '../http/lingering-close.js';
import { releaseAtTurnEnd, type HeldHead } from './held-heads.js';

// Events that fire once are listened to with on(): once() wraps every listener in another
// closure, and this runs on every request.

// stream options, shared (Node copies them)
const NO_BODY = Object.freeze({ endStream: true });
const FIXED_BODY = Object.freeze({ endStream: false });
const CHUNKED_BODY = Object.freeze({ endStream: false, waitForTrailers: true });

class Http1Attempt extends Attempt implements UploadAttempt, HeldHead {
  readonly appBody: IncomingMessage;
  // the watch of an upload that outlives the complete answer (forward-http1-upload.ts)
  uploadTimer: NodeJS.Timeout | undefined = undefined;
  uploadSeen = 0;
  discarding = false;
  /**
   * The upstream's head, held until the first byte of its body, its end or its cut, but never
   * past the event-loop turn that brought it (held-heads.ts): head and body leave in one write,
   * and a cut before the body can still be answered with our error instead of an empty reply
   * (a reset between an upstream's head and its body; from the review against a hostile
   * upstream). Undefined once written (or never held).
   */
  heldStatus = 0;
  heldFields: string[] | undefined = undefined;

  constructor(ctx: OutboundContext, private readonly req: IncomingMessage, readonly res: ServerResponse, schema: SchemaResult | undefined, preread: Buffer | undefined) {
    super(ctx, req.headers, req.method ?? 'GET', schema, preread);
    this.appBody = req;
  }

  start(): void {
    const { req, reqHeaders } = this;
    const target = this.begin();
    const authority = target.authority ?? reqHeaders.host;
    // two Host fields (routed by the first, read by the upstream app as it likes) or none
    const hostRefused = hostFieldProblem(req, ' (send Host: <upstream>)');
    if (hostRefused !== undefined) {
      this.fail(new MeshcarError('bad_request', hostRefused));
      return;
    }
    // checked before routing: what routes is the name before the last ':', what goes upstream is all of it
    const authorityRefused = targetAuthorityProblem(target, authority);
    if (authorityRefused !== undefined) {
      this.fail(new MeshcarError('bad_request', authorityRefused));
      return;
    }
    const codingRefused = transferCodingProblem(reqHeaders);
    if (codingRefused !== undefined) {
      // the body is left unread, and with chunked not the last coding it has no length at all
      // (RFC 9112 §6.3): Node's parser fails the connection right after this head, so the
      // refusal must not promise keep-alive (the inbound's closes too)
      this.res.setHeader('connection', 'close');
      this.fail(new MeshcarError('unsupported_transfer_coding', codingRefused));
      return;
    }
    if (!this.route(authority, target.path, 'the request names no host (send Host: <upstream>)')) return;
    const headers = upstreamHeaders(this, this.exchange.method, target.path, authority);
    const chunked = reqHeaders['transfer-encoding'] !== undefined;
    const hasBody = announcesBody(reqHeaders);
    this.send(headers, hasBody ? (chunked ? CHUNKED_BODY : FIXED_BODY) : NO_BODY, hasBody, hasBody && chunked);
  }

  /** What every request's handling starts with; returns its target. */
  private begin(): ReturnType<typeof parseRequestTarget> {
    const { req, res } = this;
    const target = parseRequestTarget(req.url, req.method);
    this.exchange.path = pathOnly(target.path);
    if (this.ctx.draining) res.setHeader('connection', 'close');
    bindAttempt(res, this);
    bindAttempt(req, this);
    res.on('close', onResponseClose);
    return target;
  }

  /** An Expect the listener cannot meet: 417, recorded as any refusal (the body left unread: the connection goes). */
  refuseExpectation(): void {
    const target = this.begin();
    const pool = this.ctx.router.lookup(target.authority ?? this.reqHeaders.host);
    if (pool) this.exchange.peer = pool.name;
    this.res.setHeader('connection', 'close');
    this.fail(expectationError(this.req));
  }

  protected appGone(): boolean {
    // the connection destroyed (a drain out of time cuts them all): its close is still to come
    return this.res.destroyed || this.req.socket.destroyed;
  }

  answerComplete(): boolean {
    return this.res.writableEnded;
  }

  // a complete answer stays complete (an upstream may reset an upload it has answered); an
  // upload still coming is nobody's now
  keepCompleteAnswer(): void {
    upstreamDoneWithUpload(this);
  }

  // the head is out, and a cut is the only way to say the body is incomplete
  protected cutAnswer(err: MeshcarError): void {
    this.exchange.errorCode = err.code;
    if (this.heldFields !== undefined) {
      // nothing of the answer has reached the app: it gets our error, and the record says so
      this.heldFields = undefined;
      this.exchange.status = statusFor(err.code);
      if (this.exchange.grpcStatus !== undefined) this.exchange.grpcStatus = grpcStatusFor(err.code);
      const grpcType = grpcAnswerType(this.reqHeaders['content-type']);
      this.exchange.bytesOut += errorBodyBytes(err, this.exchange.requestId, grpcType, this.exchange.method);
      this.sendError(err, grpcType);
      return;
    }
    // cut: whatever status the upstream's trailers had, the app gets none
    if (this.exchange.grpcStatus !== undefined) this.exchange.grpcStatus = null;
    this.res.destroy();
  }

  protected sendError(err: MeshcarError, grpcType: string | undefined): void {
    // a body announced too long to carry, or one the app stopped sending, is not read to its
    // end to keep the connection
    if (err.code === 'body_too_large' || err.code === 'request_timeout') this.res.setHeader('connection', 'close');
    sendError(this.res, err, { requestId: this.exchange.requestId, grpcType });
  }

  writeHead(status: number, _head: IncomingHttpHeaders, flags: number | boolean, raw: readonly string[]): boolean {
    // the decoded list straight to node:http, which writes a list as it is (no object in between)
    const out = forwardableFieldList(raw);
    if (bodylessStatus(status)) dropContentLength(out);
    // draining, or nothing more is read from the connection (a later pipelined request was an
    // Upgrade, a CONNECT or unparseable) and this is its last answer: it says the connection closes
    if (this.ctx.draining || closesAfterAnswers(this.req.socket)) out.push('connection', 'close');
    if (!responseEnds(flags)) {
      // a body follows: held until its first byte (heldFields), or the end of this turn
      this.heldStatus = status;
      this.heldFields = out;
      releaseAtTurnEnd(this);
      return true;
    }
    try {
      this.res.writeHead(status, out);
    } catch (err) {
      this.headUnrelayable(err);
      return false;
    }
    return true;
  }

  /** The held head to node:http, before the first body byte, the end or the trailers; false: it could not be (the answer failed, nothing sent). */
  releaseHead(): boolean {
    const fields = this.heldFields;
    if (fields === undefined) return true;
    this.heldFields = undefined;
    try {
      this.res.writeHead(this.heldStatus, fields);
    } catch (err) {
      // nothing of it reached the app: still held, so fail() answers our error (cutAnswer)
      this.heldFields = fields;
      this.fail(new MeshcarError('bad_gateway', `the upstream answered with a head that cannot be relayed: ${describeError(err)}`));
      return false;
    }
    return true;
  }

  holdsHead(): boolean {
    return this.heldFields !== undefined && !this.res.destroyed;
  }

  /** The turn ended with the head still held: no body byte came with it (an SSE stream, a long poll). */
  sendHeldHead(): void {
    if (this.releaseHead() && !this.res.destroyed) this.res.flushHeaders();
  }

  relayBody(up: UpstreamStream): void {
    // pipe() without its per-request set of listeners on both streams; same backpressure
    up.on('data', onUpstreamData);
    up.on('end', onUpstreamEnd);
    countBody(up, this.exchange, 'out');
  }

  upstreamTrailers(trailers: IncomingHttpHeaders): void {
    // sent only if the response is chunked; with a content-length HTTP/1.1 has nowhere to put them
    if (this.res.destroyed) return;
    try {
      this.res.addTrailers(forwardableTrailers(trailers) as Record<string, string>);
    } catch {
      // an invalid trailer from the upstream is dropped, not fatal
    }
  }

  requestTrailers(): OutgoingHttpHeaders {
    // as an h2c app's trailers (forward-h2c.ts): no framing, routing, auth or control fields
    // in a trailer section, which an upstream that is not meshcar might merge into the head
    return forwardableTrailers(forwardableHeaders(this.req.trailers));
  }

  protected pipeBody(up: UpstreamStream): void {
    // paused by the upstream's backpressure, the app's socket is not read: its reset is asked
    // for. Only a request that announces a body: a GET is not complete yet when this runs
    if (!this.req.complete && announcesBody(this.req.headers)) probeWhilePaused(this.req);
    this.req.pipe(up);
    countBody(this.req, this.exchange, 'in');
  }

  pipeRestOfBody(up: UpstreamStream): void {
    this.req.pipe(up);
  }

  /**
   * The app's body broke mid-way (listener.ts): the upstream's work is not wanted, and its end
   * is no fault of the endpoint's (markCancelled); a 400 if nothing was answered yet, else the
   * connection goes, as nothing more of it can be read.
   */
  bodyBroken(err: MeshcarError): void {
    this.cancelUpstream();
    if (!this.over()) {
      this.res.setHeader('connection', 'close');
      this.fail(err);
      return;
    }
    // our answer is whole (a 501 whose chunked body then broke): it still reaches an app that
    // is sending, as any answer that closes the connection does; one cut short is cut
    if (this.answerComplete()) lingeringClose(this.req.socket);
    else this.req.socket.destroy();
  }

  sendContinue(): void {
    if (!this.res.headersSent) this.res.writeContinue();
  }
}

function onResponseClose(this: ServerResponse): void {
  const attempt = attemptOf<Http1Attempt>(this);
  attempt.appClosed(!this.writableFinished);
  if (this.writableFinished && !attempt.appBody.complete) watchUpload(attempt);
}

function onUpstreamData(this: UpstreamStream, chunk: Buffer): void {
  const attempt = attemptOf<Http1Attempt>(this);
  const res = attempt.res;
  if (res.destroyed || res.writableEnded) return; // the app is gone; 'close' cancels the stream
  if (attempt.heldFields !== undefined && !attempt.releaseHead()) return;
  if (!res.write(chunk)) {
    this.pause();
    res.once('drain', onResponseDrain);
  }
}

function onResponseDrain(this: ServerResponse): void {
  attemptOf(this).upstream?.resume();
}

// Node ends a reset stream's readable side like a finished one (then destroys it), so a
// plain pipe would close a truncated chunked response as if it were whole: check the code.
function onUpstreamEnd(this: UpstreamStream): void {
  const attempt = attemptOf<Http1Attempt>(this);
  if (!bodyCut(attempt, this) && attempt.releaseHead()) attempt.res.end();
}

/** listener.ts's brokenBody: false when no attempt holds `req` (still being screened against a schema). */
export function http1BodyBroken(req: IncomingMessage, err: MeshcarError): boolean {
  const attempt = attemptOf(req) as Http1Attempt | undefined;
  if (attempt === undefined) return false;
  attempt.bodyBroken(err);
  return true;
}

/** The listener's 417 for an Expect it cannot meet (listener.ts), with the request's record. */
export function refuseHttp1Expectation(ctx: OutboundContext, req: IncomingMessage, res: ServerResponse): void {
  new Http1Attempt(ctx, req, res, undefined, undefined).refuseExpectation();
}

export function forwardHttp1(ctx: OutboundContext, req: IncomingMessage, res: ServerResponse, schema?: SchemaResult, preread?: Buffer): void {
  new Http1Attempt(ctx, req, res, schema, preread).start();
}

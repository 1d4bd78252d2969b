// An exchange with an HTTP/2 caller, on the core stream API rather than the compatibility
// layer: gRPC needs exact control of the end of a response (a trailers-only answer is one
// HEADERS frame with END_STREAM; an ordinary one ends with a trailers HEADERS frame), which
// Http2ServerResponse does not give. Both codecs (http2.codec: node, meshcar) hand it their
// stream through the H2ServerStream interface; the differences are settled by the caller
// (END_STREAM flags vs a boolean, a reset guard only where the codec has no budget of its own).

import { pingBytesOf } from './node-ping-bytes.js';
import { constants as h2constants, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { H2ServerStream } from '../http/h2-server-stream.js';
import { H2Stream } from '../h2/index.js';
import type { ErrorCode } from '../errors.js';
import type { Caller } from './caller.js';
import { sendStreamError } from '../http/status.js';
import { describeError, MeshcarError } from '../errors.js';
import { DONE, Exchange } from './exchange.js';
import { bindExchange, exchangeOf, type ExchangeContext } from './exchange-links.js';
import { provokedResetCode, type ResetGuard } from './reset-guard.js';
import { TRAILERS_TOO_LARGE, answerHeadOverCaller, nodeTrailersOver, trailersMessage, trailersRefused, warnOverCaller } from './answer-head-limit.js';

// respond() copies its options, so these may be shared by every request
const END_STREAM = Object.freeze({ endStream: true });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const NO_TRAILERS: OutgoingHttpHeaders = Object.freeze({});
const NGHTTP2_NO_ERROR = 0;

export class Http2Exchange extends Exchange {
  readonly requestHasBody: boolean;
  /** The caller waits for 100 before sending its body: core HTTP/2 streams never send one themselves. */
  readonly expectsContinue: boolean;
  readonly http1Socket = undefined;
  private trailers: OutgoingHttpHeaders | undefined = undefined;
  /** The session's rapid-reset counter (node codec; meshcar's codec counts resets itself). */
  readonly guard: ResetGuard | undefined;
  /** The caller reset the stream before the response ended (counted once). */
  resetByCaller = false;
  /** 'wantTrailers' is awaited: the answer ends with the trailers, not at 'finish' (onResponseFinished). */
  trailersPending = false;
  /** The answer's body was all written while trailers were pending: onResponseFinished runs after them. */
  finishedBeforeTrailers = false;

  /**
   * `requestHasBody`: the request HEADERS lacked END_STREAM. `guard`: the session's reset
   * counter, read by the caller at once (stream.session is gone by 'close').
   */
  constructor(readonly stream: H2ServerStream, readonly requestHeaders: IncomingHttpHeaders, requestHasBody: boolean, caller: Caller, context: ExchangeContext, guard: ResetGuard | undefined) {
    super(caller, context, requestHeaders[':method'] as string, (requestHeaders[':path'] as string | undefined) ?? '', requestHeaders);
    this.requestHasBody = requestHasBody;
    const expect = requestHeaders.expect;
    this.expectsContinue = this.requestHasBody && expect !== undefined && expect.toLowerCase() === '100-continue';
    context.tracker.requestStarted(undefined);
    if (this.grpcStatus !== undefined) context.tracker.grpcCallStarted(this);
    this.guard = guard;
    bindExchange(stream, this);
    stream.on('close', onStreamClose); // fires once; once() would add a closure per request
    // The caller reset the stream before our response ended. Node would wait for the request
    // body already buffered to be read before 'close', and a body held back by a slow app may
    // never be: destroy now, so the request to the app is cancelled too.
    stream.on('aborted', onStreamAborted);
    // a stream error (the caller reset it, the session died) ends in 'close'; without a
    // listener it would be thrown
    stream.on('error', ignore);
    // a request with a body may be answered before the body ends (an early 413, an app that did
    // not read it): see onResponseFinished
    if (requestHasBody) stream.on('finish', onResponseFinished);
  }

  /** meshcar's codec counts the caller's resets itself, by this deadline too; Node's are counted here (onStreamAborted). */
  override setCallerDeadline(ms: number | undefined): void {
    super.setCallerDeadline(ms);
    if (ms !== undefined && 'callerDeadlineMs' in this.stream) this.stream.callerDeadlineMs = ms;
  }

  get authority(): string | undefined {
    return (this.requestHeaders[':authority'] as string | undefined) ?? this.requestHeaders.host;
  }

  get requestBody() {
    return this.bodyReplacement ?? this.stream;
  }

  get responseSink() {
    return this.stream;
  }

  /**
   * The bytes sent toward the caller count as it takes the answer: on the meshcar codec this
   * stream's (bytesSent, as each DATA frame is framed); Node's streams release a chunk only once
   * all of it went out and count nothing of their own, so there the connection's bytes written,
   * less its PING frames (node-ping-bytes.ts).
   */
  override get deliveryMark(): number {
    const stream = this.stream as H2ServerStream & { bytesSent?: number };
    let sent = stream.bytesSent;
    if (sent === undefined) {
      try {
        const session = (stream as { session?: { socket?: { bytesWritten?: number } } }).session;
        const written = session?.socket?.bytesWritten;
        sent = written === undefined ? undefined : written - pingBytesOf(session);
      } catch {
        // Node's session socket proxy throws once the session is gone
      }
    }
    return (sent ?? 0) - stream.writableLength;
  }

  get callerGone(): boolean {
    return this.stream.destroyed;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  /** Whether writeHead may be given a header list: meshcar's codec takes one, Node's core http2 does not. */
  get takesHeaderList(): boolean {
    return this.stream instanceof H2Stream;
  }

  protected writeHead(status: number, head: OutgoingHttpHeaders | string[], endStream: boolean, _statusMessage: string | undefined, mayHaveTrailers: boolean): boolean {
    let headers: OutgoingHttpHeaders;
    if (Array.isArray(head)) {
      head[1] = String(status);
      headers = head as unknown as OutgoingHttpHeaders; // a list only when takesHeaderList: H2Stream.respond takes it
    } else {
      head[':status'] = status;
      headers = head;
    }
    // over what goes to the caller (its header list size; on node also nghttp2's 64 KiB block):
    // the sidecar's own 502 instead (exchange.ts), not a reset or a stalled stream
    const overCaller = answerHeadOverCaller(this.stream, head);
    if (overCaller !== undefined) {
      warnOverCaller(this.context.logger, 'head', this.caller.id.uri, this.path, overCaller);
      throw new Error(overCaller);
    }
    if (endStream) {
      this.stream.respond(headers, END_STREAM);
      return false;
    }
    if (!mayHaveTrailers) {
      // no trailers can come: the stream ends with the body (no 'wantTrailers' round, no extra frame)
      this.stream.respond(headers);
      return !this.stream.writableEnded;
    }
    // the app may send trailers (gRPC always does); whether it did is known only at the end
    this.stream.once('wantTrailers', onWantTrailers);
    this.trailersPending = true;
    this.stream.respond(headers, WAIT_FOR_TRAILERS);
    // HEAD, 204, 205 and 304 end at once
    return !this.stream.writableEnded;
  }

  protected writeEnd(trailers: OutgoingHttpHeaders | undefined): void {
    this.trailers = trailers;
    this.stream.end();
  }

  protected writeContinue(): void {
    this.stream.additionalHeaders({ ':status': 100 });
  }

  protected writeError(code: ErrorCode, message: string, retryAfterSeconds: number | undefined, grpcType: string | undefined): void {
    const fault = sendStreamError(this.stream, new MeshcarError(code, message, { retryAfterSeconds }), this.requestId, grpcType);
    if (fault !== undefined) this.context.logger.error({ code, err: describeError(fault) }, 'the error answer could not be sent (the stream was reset instead)');
  }

  protected refuseStream(): boolean {
    if (this.stream.destroyed || this.stream.localClosed === true) return false;
    this.stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
    return true;
  }

  protected reset(): void {
    // destroy with an error: RST_STREAM(INTERNAL_ERROR) alone. Node's close(code) would end the
    // writable side first, and a body without trailers would then end with a clean END_STREAM:
    // a response the app broke off would reach the caller as complete.
    if (!this.stream.destroyed) this.stream.destroy(new Error('the app broke off its response'));
  }

  sendTrailers(): void {
    this.trailersPending = false;
    if (this.stream.destroyed || this.stream.closed) return;
    const trailers = this.trailers ?? NO_TRAILERS;
    // over what the caller takes: not sent, the stream reset instead (Node's codec measured
    // here, the meshcar codec by itself); the caller never got the app's end, nor its grpc-status
    const overNode = nodeTrailersOver(this.stream, trailers);
    if (overNode !== undefined) this.stream.close(h2constants.NGHTTP2_INTERNAL_ERROR);
    else this.stream.sendTrailers(trailers);
    const refused = overNode ?? trailersRefused(this.stream);
    if (refused !== undefined) {
      this.errorCode = TRAILERS_TOO_LARGE;
      if (this.grpcStatus !== undefined) this.grpcStatus = null;
      warnOverCaller(this.context.logger, 'trailers', this.caller.id.uri, this.path, trailersMessage(refused));
      return;
    }
    // Node's codec puts a reset submitted now ahead of the trailers it is about to send: the
    // reset waits for this send round to end (as Node's own unread-body close does)
    if (this.finishedBeforeTrailers) setImmediate(closeUnfinished, this.stream);
  }
}

function onStreamClose(this: H2ServerStream): void {
  const exchange = exchangeOf<Http2Exchange>(this);
  if (!exchange.resetByCaller) exchange.guard?.streamCompleted();
  exchange.callerClosed();
}

function onStreamAborted(this: H2ServerStream): void {
  // DONE: the reset is our own (reset() → destroy()), whose RST_STREAM is still to be sent
  const exchange = exchangeOf<Http2Exchange>(this);
  if (exchange.phase === DONE) return;
  exchange.resetByCaller = true;
  // a code of a protocol violation: nghttp2's own reset of the caller's bad stream (reset-guard.ts)
  if (provokedResetCode((this as { rstCode?: number }).rstCode)) exchange.guard?.streamProvoked();
  else exchange.guard?.streamReset(this.headersSent, performance.now() - exchange.startedAt, undefined, exchange.callerDeadlineMs);
  this.destroy();
}

/**
 * Our side of the stream ended (the app's answer or the sidecar's own, END_STREAM included). A
 * request body the caller is still sending is wanted by nobody now: RST_STREAM(NO_ERROR) asks
 * the caller to stop without error (RFC 9113 §8.1) and closes the stream at once. Without it
 * the stream stayed open until the idle timeout: a caller's upload stalled by backpressure
 * held its sidecar's upstream stream and our exchange for 60 s. Neither codec does it for a
 * body that was being read (Node's rule, and ours: only for a body nobody started reading).
 */
function onResponseFinished(this: H2ServerStream): void {
  // the usual case (a unary gRPC call, an upload read to its end): nothing left to close, and
  // no round after the trailers to schedule
  if (this.readableEnded) return;
  const exchange = exchangeOf<Http2Exchange>(this);
  // Node's stream finishes when the body is written, before 'wantTrailers': a reset now would
  // go out before the trailers, and the answer would end without them
  if (exchange.trailersPending) {
    exchange.finishedBeforeTrailers = true;
    return;
  }
  // Node's stream finishes once its END_STREAM is handed to nghttp2, which sends a reset
  // submitted now ahead of that END_STREAM when it is a DATA frame of its own (an answer with
  // no Content-Length): the caller got an answer without its end. After this send round, as
  // after the trailers (sendTrailers)
  setImmediate(closeUnfinished, this);
}

function closeUnfinished(stream: H2ServerStream): void {
  if (stream.destroyed || stream.readableEnded) return;
  if (requestBodyWhole(stream)) {
    // a request that has all come is no upload to stop: a reset after its answer was a reset
    // the caller's sidecar (Node's client, which treats it as a cut when it overtakes the
    // answer's END_STREAM, as nghttp2's queue lets it) counted as upstream_reset. Its end is
    // only to be read now (the app's client paused the body when the answer came first)
    stream.resume();
    return;
  }
  stream.close(NGHTTP2_NO_ERROR);
  // Node's stream emits 'close' only once its readable side has ended, and that needs what is
  // buffered of the body read: a body the app's client stopped reading (its connection cut
  // after an early answer) held the stream and this exchange until the idle timeout (Node's
  // own drain of an unread body is only for one never read). Nobody wants the rest of it now.
  stream.resume();
}

/**
 * Whether the request's body has all come though its 'end' was not read: its END_STREAM arrived
 * (Node's stream and ours push the end at once, `ended`, and emit 'end' only once it is read), or
 * every byte of its Content-Length did, leaving only the END_STREAM to come (more DATA would
 * be a content-length mismatch both codecs refuse). A caller that then never sends END_STREAM
 * holds the stream no longer than any silent stream: the idle timeout.
 */
function requestBodyWhole(stream: H2ServerStream): boolean {
  if ((stream as H2ServerStream & { _readableState: { ended: boolean } })._readableState.ended) return true;
  const exchange = exchangeOf<Http2Exchange>(stream);
  const declared = exchange.requestHeaders['content-length'];
  // bytes that went to the app: a content-length 0 held for its END_STREAM (empty-body-hold.ts)
  // and answered by a deadline is still a stream to close
  return declared !== undefined && exchange.bytesIn > 0 && Number(declared) === exchange.bytesIn;
}

function onWantTrailers(this: H2ServerStream): void {
  exchangeOf<Http2Exchange>(this).sendTrailers();
}

function ignore(): void {}

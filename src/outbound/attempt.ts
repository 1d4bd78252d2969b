// The outbound attempt/retry controller, written once for HTTP/1.1 and h2c: one object per
// app request owns what does not depend on the app's protocol: the attempts on pooled upstream
// streams, the idle timeout, failure, cancellation and the report into Exchange. Its parts that
// are plain functions of it live beside it: the response-head deadline (attempt-deadline.ts),
// the judging of a stream's error, idle or refused head (attempt-stream-ends.ts), its safe
// retries (their metrics, the body kept for replay: attempt-retry.ts), the upstream's answer
// head and the end of its stream (attempt-answer.ts), and the request's head toward the upstream
// (attempt-head.ts). How the app's request is
// read and its answer written (head, body, trailers, 100-continue, error) is the small abstract
// part, implemented by forward-http1.ts and forward-h2c.ts. Listeners are shared functions
// (attempt-events.ts, attempt-retry.ts) and timers carry the controller as an argument: no
// closures per request.

import type { ClientSessionRequestOptions, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { requestIdOf } from '../http/request-id.js';
import { errorBodyBytes, grpcAnswerType, grpcStatusFor, statusFor } from '../http/status.js';
import { grpcStatusStart } from '../http/grpc-status.js';
import { continueGraceMs, expectsContinue, relayContinue } from './expect-continue.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { hostName, targetFormProblem } from './router.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { UpstreamPool } from './upstream-pool.js';
import { MAX_CONNECT_ATTEMPTS } from './pool-failover.js';
import type { ReplayCopy } from '../http/replay-copy.js';
import { markCancelled, markRequestSent, markUnfinishedAtDeadline } from './pool-counting.js';
import { leaveWhenFlushed } from './flushing-upload.js';
import { upstreamHeadProblem } from './head-limits.js';
import { cancelStream, type UpstreamStream } from './upstream-stream.js';
import type { StreamWait } from './stream-wait.js';
import { bindAttempt, listenToUpstream, onAppBodyEnd, onUpstreamWantTrailers } from './attempt-events.js';
import { armDeadline } from './attempt-deadline.js';
import { dropKeptBody, keepBodyForReplay, passDeadline, replayBody, reportRetry, stopRetryTimer, tryRetry } from './attempt-retry.js';
import { discardStream } from './attempt-stream-ends.js';
import type { Deadline } from '../http/deadline-queue.js';

import { appDeadlineMs, type RetryReason } from './retry.js';

export abstract class Attempt {
  readonly exchange: Exchange;
  /** Set by route(); everything after it may rely on it. */
  pool!: UpstreamPool;
  /** The upstream's timeout and idleTimeout as the request came: a reload changes the pool's for new requests, not this one. */
  timeoutMs = 0;
  idleTimeoutMs = 0;
  /** The current attempt's stream; undefined between attempts. */
  upstream: UpstreamStream | undefined = undefined;
  /** A response head is decided: the upstream's, or one of ours. */
  answered = false;
  /** The Content-Length the upstream's answer announced, or -1 (attempt-answer.ts bodyCut). */
  answerLength = -1;
  /** fail() ran: later events of the (cancelled) upstream stream are echoes, not news. */
  failed = false;
  endpointKey = '';
  /** The stream the app's body is piped to: the first attempt's, or the retry's that an upload still coming goes on to. */
  pipedTo: UpstreamStream | undefined = undefined;
  /** The armed response-head deadline (attempt-deadline.ts). */
  timer: Deadline<Attempt> | undefined = undefined;
  /** The pool's slow path is getting this attempt a stream: cancelled if the attempt ends first. */
  waiting: StreamWait | undefined = undefined;
  private hasBody = false;
  /** The request ends with trailers (sent on the upstream's 'wantTrailers'). */
  private trailersOut = false;
  // What the retries (attempt-retry.ts) read and keep (not for users of the controller).
  /** The limit the armed deadline stands for (the app's deadline or the upstream's timeout), for its message. */
  deadlineMs = 0;
  /** performance.now() at which the sidecar gives up waiting for the head; Infinity: no deadline runs (yet). */
  deadlineAt = Infinity;
  /** The armed deadline is the app's own (grpc-timeout, x-request-timeout), shorter than the upstream's timeout. */
  appDeadline = false;
  /** The app's request body has ended (or there is none): the upstream's timeout runs (passDeadline reads it). */
  bodyDone = false;
  /** The app's own deadline in ms (whichever is shorter), or undefined: a retry tells the upstream the time left of it. */
  appDeadlineMs: number | undefined = undefined;
  headers: OutgoingHttpHeaders | string[] | undefined = undefined;
  streamOptions: ClientSessionRequestOptions | undefined = undefined;
  // retries (see retry.ts): nothing here is touched unless an attempt fails before the answer
  retries = 0;
  retryTimer: NodeJS.Timeout | undefined = undefined;
  /** Why the attempt in progress is a retry; its outcome is reported once. */
  retryReason: RetryReason | undefined = undefined;
  lastEndpoint: UpstreamEndpoint | undefined = undefined;
  /** Every endpoint an earlier attempt went to, made at the first retry: a retry goes to one none of them is, when there is one. */
  triedEndpoints: Set<UpstreamEndpoint> | undefined = undefined;
  /** The app's body has been piped to an attempt (later attempts replay `body`). */
  piped: boolean;
  /** The body as it went by, for replay; null: not kept (no retries, 100-continue, over the limit, or answered). */
  body: Buffer[] | null;
  /** What `body` stands for while the app's body goes by: copied into one buffer (attempt-retry.ts keepBodyForReplay). */
  bodyCopy: ReplayCopy | undefined = undefined;
  bodySize: number;

  // `preread`: the whole body, already read by the schema check; sent as a replay would be
  constructor(
    protected readonly ctx: OutboundContext,
    readonly reqHeaders: IncomingHttpHeaders,
    method: string,
    schema: SchemaResult | undefined,
    preread: Buffer | undefined,
  ) {
    this.exchange = new Exchange(ctx, method, requestIdOf(reqHeaders));
    this.exchange.schema = schema;
    this.exchange.grpcStatus = grpcStatusStart(reqHeaders['content-type']);
    this.exchange.bytesIn = preread?.length ?? 0;
    this.piped = preread !== undefined;
    this.body = preread !== undefined ? [preread] : null;
    this.bodySize = preread?.length ?? 0;
    ctx.activity.enter();
  }

  // ---- the protocol's part (forward-http1.ts, forward-h2c.ts); the answer's, public for attempt-answer.ts ----

  abstract readonly appBody: Readable; // the app's request body
  protected abstract appGone(): boolean; // nothing more can be answered
  abstract answerComplete(): boolean; // the answer was written to its end
  /** The answer is complete, but the upstream stream broke (an upstream may reset an upload it answered). */
  abstract keepCompleteAnswer(): void;
  /** The head is out but the body is not: tell the app the response is incomplete. */
  protected abstract cutAnswer(err: MeshcarError, rstCode: number | undefined): void;
  /** The sidecar's own error answer (JSON, or gRPC trailers-only when `grpcType`). */
  protected abstract sendError(err: MeshcarError, grpcType: string | undefined): void;
  /** The upstream's response head to the app; false: not written (and handled). */
  /** `raw`: the same head as the flat list it was decoded from (for a writer that takes a list). */
  abstract writeHead(status: number, head: IncomingHttpHeaders, flags: number | boolean, raw: readonly string[]): boolean;
  abstract relayBody(up: UpstreamStream, flags: number | boolean): void; // and its end
  protected abstract pipeBody(up: UpstreamStream): void; // the app's body to the first attempt
  /** A retry's stream, the app's body still coming: the rest of it piped on (attempt-retry.ts replayBody). */
  abstract pipeRestOfBody(up: UpstreamStream): void;
  abstract upstreamTrailers(trailers: IncomingHttpHeaders): void; // the current attempt's
  abstract requestTrailers(): OutgoingHttpHeaders; // end the request body upstream
  abstract sendContinue(): void; // a 100 Continue to the app (see relayContinue)

  /** Over: failed, answered, or nobody left to answer. */
  over(): boolean {
    return this.failed || this.answered || this.appGone();
  }

  // ---- the flow ----

  /**
   * The upstream named by `authority`, or a no_route answer (undefined); `target` is the request
   * target as it goes upstream (:path, with its query), refused here if no peer takes it.
   */
  protected route(authority: string | undefined, target: string, noHost: string): UpstreamPool | undefined {
    const pool = this.ctx.router.lookup(authority);
    if (!pool) {
      const name = authority ? hostName(authority) : '';
      this.fail(new MeshcarError('no_route', name ? this.ctx.router.noRouteMessage(name) : noHost));
      return undefined;
    }
    this.pool = pool;
    this.timeoutMs = pool.timeoutMs;
    this.idleTimeoutMs = pool.idleTimeoutMs;
    this.exchange.peer = pool.name;
    // a target no HTTP/2 peer takes (`GET *`, `ftp://...`): the upstream's codec would reset it,
    // which reads as the endpoint's reset (retried, held against it)
    const targetRefused = targetFormProblem(this.exchange.method, target);
    if (targetRefused !== undefined) {
      this.fail(new MeshcarError('bad_request', targetRefused));
      return undefined;
    }
    return pool;
  }

  /** Starts the deadline and the first attempt. */
  protected send(headers: OutgoingHttpHeaders | string[], streamOptions: ClientSessionRequestOptions, hasBody: boolean, trailersOut: boolean): void {
    const pool = this.pool;
    // the upstream sidecar would refuse it (a reset held against a healthy endpoint): ours to answer
    const refused = upstreamHeadProblem(headers, this.reqHeaders);
    if (refused !== undefined) {
      this.fail(refused);
      return;
    }
    this.headers = headers;
    this.streamOptions = streamOptions;
    this.hasBody = hasBody;
    this.trailersOut = trailersOut;
    this.appDeadlineMs = appDeadlineMs(this.reqHeaders['grpc-timeout'], this.reqHeaders['x-request-timeout']);
    // a body read ahead (the OpenAPI check) is whole already
    this.bodyDone = !hasBody || this.piped;
    pool.retry.budget.requests++;
    // the wait for a stream to carry the request is bounded by the timeout as well, body or not:
    // the upload, once it flows, is the idle timeout's to guard (streamOpened re-arms)
    armDeadline(this, true);
    // the upstream is told the shorter of the app's deadline and ours, or the app's alone while
    // its body is still to come (attempt-retry.ts)
    passDeadline(this);
    this.waiting = pool.openStream(this.headers, streamOptions, this);
  }

  fail(err: MeshcarError, rstCode?: number): void {
    if (this.failed) return;
    this.failed = true;
    this.stopTimers();
    this.stopWaiting();
    reportRetry(this, 'failure');
    // nothing is sent again: an upload still coming is read and dropped now, not copied
    dropKeptBody(this);
    const up = this.upstream;
    // CANCEL alone: an upload still being sent must not end first (END_STREAM would make a
    // cut body look whole to the upstream, or break its Content-Length)
    if (up && !up.closed) cancelStream(up);
    if (this.answered) {
      if (this.answerComplete()) this.keepCompleteAnswer();
      else this.cutAnswer(err, rstCode);
      return;
    }
    this.answered = true;
    // nobody to answer: the app left first (its h2c stream reset, closed before we could
    // answer), so the record says it left (499, no error), not our answer's status
    if (this.appGone()) return;
    this.exchange.errorCode = err.code;
    const grpcType = grpcAnswerType(this.reqHeaders['content-type']);
    // a gRPC caller gets 200 and grpc-status on the wire; metrics count the status the error stands for
    this.exchange.status = statusFor(err.code);
    // our own trailers-only gRPC answer (gRPC-Web callers get one too, but are not counted as gRPC)
    if (this.exchange.grpcStatus !== undefined) this.exchange.grpcStatus = grpcStatusFor(err.code);
    this.exchange.bytesOut += errorBodyBytes(err, this.exchange.requestId, grpcType, this.exchange.method);
    this.sendError(err, grpcType);
  }

  /**
   * The app's side closed: the exchange is over (`cancel`: the upstream's work is not wanted;
   * `whole`: the app's body ended whole, and may still be on its way to an upstream that
   * answered early and reads on).
   */
  appClosed(cancel: boolean, whole = false): void {
    // a retry still waiting or in flight has no outcome of its own: it is counted as cancelled
    reportRetry(this, 'cancelled');
    this.timer?.cancel();
    stopRetryTimer(this);
    this.stopWaiting();
    if (cancel) this.cancelUpstream();
    // only a cut of the sidecar's own is recorded so (exchange.ts finish): not asked of every request
    if (this.ctx.cutBy !== undefined && this.answered && !this.answerComplete()) this.exchange.brokenOff = true;
    const up = this.upstream;
    // an upload still flushing is in flight until its stream closes: a drain waits for it (the
    // sidecar's stop closed the session under it, and the upstream lost its last window)
    if (whole && up !== undefined && up.writableEnded && !up.writableFinished && !up.destroyed) leaveWhenFlushed(this.ctx.activity, up, this.idleTimeoutMs);
    else this.ctx.activity.leave();
    this.exchange.finish();
  }

  /** The app went away: its stream is reset (CANCEL), and its end is not the endpoint's failure. */
  cancelUpstream(): void {
    const up = this.upstream;
    if (up === undefined || up.closed) return;
    markCancelled(up);
    // answered, unfinished, and the app's own deadline come: it gave up waiting (pool-counting.ts)
    if (this.answered && !this.failed && pastAppDeadline(this.appDeadlineMs, this.exchange.startedMs)) markUnfinishedAtDeadline(up);
    cancelStream(up);
  }

  /** No stream is wanted any more: a wait on the pool's slow path ends now (its pending slot with it). */
  private stopWaiting(): void {
    const wait = this.waiting;
    this.waiting = undefined;
    wait?.cancel();
  }

  private stopTimers(): void {
    this.timer?.cancel();
    this.timer = undefined;
    stopRetryTimer(this);
  }

  /** pool.openStream's callback: an attempt's stream exists. */
  streamOpened(up: UpstreamStream, endpoint: UpstreamEndpoint): void {
    this.waiting = undefined;
    this.endpointKey = endpoint.key;
    this.exchange.endpoint = endpoint.key;
    this.lastEndpoint = endpoint;
    if (this.over()) {
      discardStream(up);
      return;
    }
    this.upstream = up;
    bindAttempt(up, this);
    listenToUpstream(up, this.idleTimeoutMs);
    if (expectsContinue(this.reqHeaders.expect)) relayContinue(up, continueGraceMs(this.timeoutMs), this);
    // the request is whole on the stream now unless the app's upload is still to come (then at
    // its end, attempt-deadline.ts): a wait the app gives up on counts from then (pool-counting.ts)
    if (this.bodyDone) markRequestSent(up);
    if (!this.hasBody) return;
    if (this.trailersOut) up.on('wantTrailers', onUpstreamWantTrailers);
    if (!this.piped) {
      this.piped = true;
      this.pipedTo = up;
      if (!this.bodyDone) {
        // the upload may take longer than the timeout: it runs once the body has ended; until
        // then only the app's own deadline (and the idle timeout) holds
        this.appBody.on('end', onAppBodyEnd); // 'end' comes once: no once() wrapper per request
        armDeadline(this, false);
      }
      this.pipeBody(up);
      keepBodyForReplay(this);
    } else replayBody(this, up);
  }

  /** pool.openStream's callback: no stream could be had. */
  streamFailed(err: unknown): void {
    this.waiting = undefined;
    const error = isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${this.pool.name}: ${describeError(err)}`, { cause: err });
    // no stream: nothing reached the upstream. An endpoint that could not prove its identity is
    // one more dead endpoint when the upstream has others than the failover tried (3); with no
    // other, a retry would only meet the same certificate again
    const another = error.code === 'upstream_identity_mismatch' && this.pool.endpoints.size > MAX_CONNECT_ATTEMPTS;
    if ((error.code === 'upstream_unavailable' || another) && tryRetry(this, 'connect_failure', undefined, true)) return;
    this.fail(error);
  }

  /** For writeHead(): the upstream's head could not be written to the app. */
  protected headUnrelayable(err: unknown): void {
    this.fail(new MeshcarError('bad_gateway', `the upstream answered with a head that cannot be relayed: ${describeError(err)}`));
  }
}

/**
 * Whether the app's own deadline has come: within a tenth of it (at least 50 ms) before our
 * count of it ends, as the app's clock started when it sent the request, before it reached us.
 */
function pastAppDeadline(deadlineMs: number | undefined, startedMs: number): boolean {
  if (deadlineMs === undefined) return false;
  return performance.now() - startedMs >= deadlineMs - Math.max(50, deadlineMs / 10);
}

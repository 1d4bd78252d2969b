// One h2c stream from the app (HTTP/2 with prior knowledge, e.g. a gRPC client), carried to
// its upstream as a stream on a pooled mTLS session. Both directions are piped (HTTP/2 flow
// control on each side is the backpressure) and trailers cross intact both ways: responses
// with a body are sent with waitForTrailers and finished with the upstream's trailers, or an
// empty END_STREAM when it sent none, so gRPC's grpc-status arrives where the client expects
// it. A trailers-only answer (HEADERS with END_STREAM) is relayed as exactly that.

import { performance } from 'node:perf_hooks';
import { constants as h2, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { requestIdOf } from '../http/request-id.js';
import { answerStatusFor, grpcAnswerType, sendStreamError } from '../http/status.js';
import { continueGraceMs, expectsContinue, relayContinue } from './expect-continue.js';
import { countBody, Exchange, type OutboundContext } from './exchange.js';
import { hostName, pathOnly } from './router.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { responseEnds, type UpstreamStream } from './upstream-stream.js';
import { upstreamReset, upstreamTimeout } from './upstream-errors.js';
import { appDeadlineMs, isRetryableRequest, type RetryReason } from './retry.js';

const NO_BODY = Object.freeze({ endStream: true });
const WITH_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const RESPOND_END = Object.freeze({ endStream: true });
const RESPOND_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const CONTINUE = Object.freeze({ ':status': 100 });
const PIPE_NO_END = Object.freeze({ end: false });
const NO_TRAILERS: OutgoingHttpHeaders = Object.freeze({}) as OutgoingHttpHeaders;

function ignore(): void {}

export function forwardH2c(ctx: OutboundContext, stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders, schema?: SchemaResult, preread?: Buffer): void {
  const method = reqHeaders[':method'] ?? 'GET';
  const path = reqHeaders[':path'];
  const exchange = new Exchange(ctx.observer, method, requestIdOf(reqHeaders));
  exchange.schema = schema;
  exchange.bytesIn = preread?.length ?? 0;
  if (path !== undefined) exchange.path = pathOnly(path);
  const authority = reqHeaders[':authority'] ?? reqHeaders.host;
  const pool = ctx.router.lookup(authority);

  ctx.activity.enter();
  stream.on('error', ignore); // a reset by the app surfaces as 'close'; nothing to add

  let upstream: UpstreamStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  let answered = false;
  let failed = false;
  let endpointKey = '';
  let requestTrailers: OutgoingHttpHeaders = NO_TRAILERS;
  let responseTrailers: OutgoingHttpHeaders = NO_TRAILERS;
  // retries (see retry.ts): nothing here is touched unless an attempt fails before the answer
  let retries = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryReason: RetryReason | undefined;
  let lastEndpoint: UpstreamEndpoint | undefined;
  // `preread`: the whole body, already read by the schema check; sent as a replay would be
  let piped = preread !== undefined;
  let body: Buffer[] | null = preread !== undefined ? [preread] : null;
  let bodySize = preread?.length ?? 0;

  const fail = (err: MeshcarError, rstCode?: number) => {
    if (failed) return;
    failed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = undefined;
    if (retryReason !== undefined) {
      pool?.retry.report(retryReason, 'failure');
      retryReason = undefined;
    }
    if (upstream && !upstream.closed) upstream.close(h2.NGHTTP2_CANCEL);
    if (answered) {
      if (stream.closed) return;
      if (stream.writableEnded) {
        // the answer is complete (an upstream may reset an upload it has answered)
        drainUpload();
        return;
      }
      // the head is out: pass the reset on, so the app sees an incomplete response as one
      exchange.errorCode = err.code;
      stream.close(rstCode || h2.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    exchange.errorCode = err.code;
    answered = true;
    const grpcType = grpcAnswerType(reqHeaders['content-type']);
    exchange.status = answerStatusFor(err.code, grpcType);
    sendStreamError(stream, err, exchange.requestId, grpcType);
  };

  stream.on('close', () => {
    if (timer) clearTimeout(timer);
    if (retryTimer) clearTimeout(retryTimer);
    if (upstream && !upstream.closed) upstream.close(h2.NGHTTP2_CANCEL);
    ctx.activity.leave();
    exchange.finish();
  });

  if (!pool) {
    const name = authority ? hostName(authority) : '';
    fail(new MeshcarError('no_route', name ? `no upstream is named "${name}"` : 'the request names no :authority'));
    return;
  }
  exchange.peer = pool.name;
  if (path === undefined || method === 'CONNECT') {
    fail(new MeshcarError('bad_request', 'CONNECT is not supported on the outbound listener'));
    return;
  }

  const headers = forwardableHeaders(reqHeaders);
  headers.host = undefined;
  headers[':method'] = method;
  headers[':path'] = path;
  headers[':authority'] = authority;
  headers['x-request-id'] = exchange.requestId;
  const hasBody = !stream.endAfterHeaders;
  if (hasBody) {
    // listened for now: the app may finish its body and trailers before the upstream stream exists
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      requestTrailers = forwardableHeaders(trailers);
    });
  }

  /**
   * Answered in full while the app is still uploading, and the upstream takes no more: read the
   * rest of the upload and drop it, so the app's stream completes normally instead of waiting
   * on flow control forever (what Node's HTTP/1.1 server does with an unread body).
   */
  const drainUpload = () => {
    if (stream.readableEnded || stream.closed) return;
    if (upstream) stream.unpipe(upstream);
    stream.resume();
  };

  const appDeadline = appDeadlineMs(reqHeaders['grpc-timeout'], reqHeaders['x-request-timeout']);
  const deadlineMs = appDeadline !== undefined && appDeadline < pool.timeoutMs ? appDeadline : pool.timeoutMs;
  pool.retry.budget.requests++;

  const keepBody = (chunk: Buffer) => {
    if (body === null) return;
    bodySize += chunk.length;
    if (bodySize > pool.retry.bufferLimit) {
      body = null; // too large to replay: this request will not be retried
      stream.off('data', keepBody);
    } else body.push(chunk);
  };

  /** Lets go of the current attempt's stream: its handlers see it is no longer `upstream`. */
  const abandon = () => {
    const old = upstream;
    upstream = undefined;
    if (old === undefined) return;
    old.setTimeout(0);
    if (piped) stream.unpipe(old);
    if (!old.closed) old.close(h2.NGHTTP2_CANCEL);
  };

  const attemptAgain = () => {
    retryTimer = undefined;
    if (failed || answered || stream.closed || stream.destroyed) return;
    pool.openStream(headers, hasBody ? WITH_BODY : NO_BODY, onOpened, onOpenFailed, lastEndpoint);
  };

  /** As in forward-http1.ts: another attempt when safe, allowed and in time. */
  const tryRetry = (reason: RetryReason, retryAfter?: unknown): boolean => {
    if (answered || failed || stream.closed || stream.destroyed) return false;
    if (!isRetryableRequest(method, reqHeaders) || expectsContinue(reqHeaders.expect)) return false;
    if (piped && (body === null || !stream.readableEnded)) return false;
    const wait = pool.retry.plan(retries + 1, retryAfter, deadlineMs - (performance.now() - exchange.startedMs));
    if (retryReason !== undefined) {
      pool.retry.report(retryReason, 'failure');
      retryReason = undefined;
    }
    if (wait < 0) return false;
    retries += 1;
    retryReason = reason;
    abandon();
    retryTimer = setTimeout(attemptAgain, wait);
    return true;
  };

  // flags: Node's frame flags, or the meshcar codec's endStream boolean (upstream-stream.ts)
  const onResponse = (head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number | boolean) => {
    if (answered) return;
    const status = Number(head[':status']);
    if ((status === 503 || status === 429) && tryRetry(status === 503 ? 'status_503' : 'status_429', head['retry-after'])) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const up = upstream as UpstreamStream;
    if (stream.destroyed || stream.closed) {
      up.close(h2.NGHTTP2_CANCEL);
      return;
    }
    const out = forwardableHeaders(head);
    out[':status'] = status;
    const ends = responseEnds(flags);
    try {
      stream.respond(out, ends ? RESPOND_END : RESPOND_BODY);
    } catch (err) {
      fail(new MeshcarError('bad_gateway', `the upstream answered with a head that cannot be relayed: ${describeError(err)}`));
      return;
    }
    answered = true;
    exchange.answered(status, head);
    if (retryReason !== undefined) {
      pool.retry.report(retryReason, status >= 500 || status === 429 ? 'failure' : 'success');
      retryReason = undefined;
    }
    if (ends) {
      up.resume();
      return;
    }
    stream.on('wantTrailers', () => stream.sendTrailers(responseTrailers));
    // Node ends a reset stream's readable side like a finished one: check the code at the end
    up.pipe(stream, PIPE_NO_END);
    countBody(up, exchange, 'out');
    up.on('end', () => {
      if (up.rstCode !== undefined && up.rstCode !== h2.NGHTTP2_NO_ERROR) fail(upstreamReset(endpointKey, `code ${up.rstCode}`), up.rstCode);
      else stream.end();
    });
  };

  const onOpened = (up: UpstreamStream, endpoint: UpstreamEndpoint) => {
    endpointKey = endpoint.key;
    exchange.endpoint = endpoint.key;
    lastEndpoint = endpoint;
    if (answered || failed || stream.closed || stream.destroyed) {
      up.close(h2.NGHTTP2_CANCEL);
      return;
    }
    upstream = up;
    up.on('response', (head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number | boolean) => {
      if (up === upstream) onResponse(head, flags);
    });
    up.on('trailers', (trailers: IncomingHttpHeaders) => {
      responseTrailers = forwardableHeaders(trailers);
    });
    up.on('error', (err: Error) => {
      if (up !== upstream) return; // an abandoned attempt
      if (!answered && tryRetry('reset')) return;
      fail(upstreamReset(endpointKey, describeError(err)), up.rstCode);
    });
    up.setTimeout(pool.idleTimeoutMs, () => {
      if (up === upstream) fail(upstreamTimeout(endpointKey, pool.idleTimeoutMs, 'sent or received nothing'));
    });
    up.on('close', () => {
      if (up !== upstream) return;
      if (!answered && tryRetry('reset')) return;
      if (!answered) fail(upstreamReset(endpointKey, `stream closed with code ${up.rstCode ?? 'unknown'} before a response`));
      else if (!stream.writableEnded) {
        if (up.rstCode !== undefined && up.rstCode !== h2.NGHTTP2_NO_ERROR) fail(upstreamReset(endpointKey, `code ${up.rstCode}`), up.rstCode);
      } else drainUpload();
    });
    if (expectsContinue(reqHeaders.expect)) {
      relayContinue(up, continueGraceMs(pool.timeoutMs), () => {
        if (!stream.headersSent && !stream.closed) stream.additionalHeaders(CONTINUE);
      });
    }
    if (hasBody) {
      up.on('wantTrailers', () => up.sendTrailers(requestTrailers));
      if (!piped) {
        piped = true;
        // an app that resets its stream mid-body must not look like one that finished it
        stream.pipe(up, PIPE_NO_END);
        countBody(stream, exchange, 'in');
        stream.on('end', () => {
          if (up !== upstream) return;
          if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) up.close(h2.NGHTTP2_CANCEL);
          else if (!up.destroyed) up.end();
        });
        // kept for replay while it goes by (no added latency), if a retry could use it
        if (pool.retry.attempts > 0 && isRetryableRequest(method, reqHeaders) && !expectsContinue(reqHeaders.expect) && !(Number(reqHeaders['content-length']) > pool.retry.bufferLimit)) {
          body = [];
          stream.on('data', keepBody);
        }
      } else {
        const kept = body ?? [];
        up.end(kept.length === 1 ? kept[0] : Buffer.concat(kept));
      }
    }
  };

  const onOpenFailed = (err: unknown) => {
    const error = isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${pool.name}: ${describeError(err)}`, { cause: err });
    if (error.code === 'upstream_unavailable' && tryRetry('connect_failure')) return;
    fail(error);
  };

  timer = setTimeout(() => fail(upstreamTimeout(pool.name, deadlineMs)), deadlineMs);
  pool.openStream(headers, hasBody ? WITH_BODY : NO_BODY, onOpened, onOpenFailed);
}

// One HTTP/1.1 request from the app, carried to its upstream as an HTTP/2 stream on a pooled
// mTLS session, and the answer carried back. Bodies are piped both ways, so flow control on
// each hop is the backpressure; nothing is buffered here. Chunked request trailers travel as
// HTTP/2 trailers; response trailers go back on chunked responses; `Expect: 100-continue` is
// relayed (the upstream's 100 becomes ours). Failures before the response head become JSON
// errors (x-meshcar-error); after it, the connection is cut, since a status was already promised.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { constants as h2, type IncomingHttpStatusHeader } from 'node:http2';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { announcesBody } from '../http/body-framing.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { requestIdOf } from '../http/request-id.js';
import { answerStatusFor, grpcAnswerType, sendError } from '../http/status.js';
import { continueGraceMs, expectsContinue, relayContinue } from './expect-continue.js';
import { countBody, Exchange, type OutboundContext } from './exchange.js';
import { hostName, parseRequestTarget, pathOnly } from './router.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { UpstreamStream } from './upstream-stream.js';
import { upstreamReset, upstreamTimeout } from './upstream-errors.js';
import { appDeadlineMs, isRetryableRequest, type RetryReason } from './retry.js';

// Events that fire once are listened to with on(): once() wraps every listener in another
// closure, and this runs on every request.

// stream options, shared (Node copies them)
const NO_BODY = Object.freeze({ endStream: true });
const FIXED_BODY = Object.freeze({ endStream: false });
const CHUNKED_BODY = Object.freeze({ endStream: false, waitForTrailers: true });

function ignore(): void {}

export function forwardHttp1(ctx: OutboundContext, req: IncomingMessage, res: ServerResponse, schema?: SchemaResult, preread?: Buffer): void {
  const reqHeaders = req.headers;
  const exchange = new Exchange(ctx.observer, req.method ?? 'GET', requestIdOf(reqHeaders));
  exchange.schema = schema;
  exchange.bytesIn = preread?.length ?? 0;
  const target = parseRequestTarget(req.url);
  exchange.path = pathOnly(target.path);
  const authority = target.authority ?? reqHeaders.host;
  const pool = ctx.router.lookup(authority);

  ctx.activity.enter();
  if (ctx.draining) res.setHeader('connection', 'close');

  let upstream: UpstreamStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** A response head is decided: the upstream's, or one of ours. */
  let answered = false;
  /** fail() ran: later events of the (cancelled) upstream stream are echoes, not news. */
  let failed = false;
  let endpointKey = '';
  // retries (see retry.ts): nothing here is touched unless an attempt fails before the answer
  let retries = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  /** Why the attempt in progress is a retry; its outcome is reported once. */
  let retryReason: RetryReason | undefined;
  let lastEndpoint: UpstreamEndpoint | undefined;
  /** The app's body has been piped to an attempt (later attempts replay `body`). */
  // `preread`: the whole body, already read by the schema check; sent as a replay would be
  let piped = preread !== undefined;
  /** The body as it went by, for replay; null: not kept (not retryable, or over the limit). */
  let body: Buffer[] | null = preread !== undefined ? [preread] : null;
  let bodySize = preread?.length ?? 0;

  const fail = (err: MeshcarError) => {
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
      // a complete answer stays complete (an upstream may reset an upload it has answered);
      // otherwise the head is out, and a cut is the only way to say the body is incomplete
      if (!res.writableEnded) {
        exchange.errorCode = err.code;
        res.destroy();
      }
      return;
    }
    exchange.errorCode = err.code;
    answered = true;
    const grpcType = grpcAnswerType(reqHeaders['content-type']);
    exchange.status = answerStatusFor(err.code, grpcType);
    sendError(res, err, { requestId: exchange.requestId, grpcType });
  };

  res.on('close', () => {
    if (timer) clearTimeout(timer);
    if (retryTimer) clearTimeout(retryTimer);
    if (!res.writableFinished && upstream && !upstream.closed) upstream.close(h2.NGHTTP2_CANCEL);
    ctx.activity.leave();
    exchange.finish();
  });

  if (!pool) {
    const name = authority ? hostName(authority) : '';
    fail(new MeshcarError('no_route', name ? `no upstream is named "${name}"` : 'the request names no host (send Host: <upstream>)'));
    return;
  }
  exchange.peer = pool.name;

  const headers = forwardableHeaders(reqHeaders);
  headers.host = undefined; // HTTP/2 carries it as :authority; undefined values are not sent
  headers[':method'] = exchange.method;
  headers[':path'] = target.path;
  headers[':authority'] = authority;
  headers['x-request-id'] = exchange.requestId;
  const chunked = reqHeaders['transfer-encoding'] !== undefined;
  const length = reqHeaders['content-length'];
  const hasBody = announcesBody(reqHeaders);
  const appDeadline = appDeadlineMs(reqHeaders['grpc-timeout'], reqHeaders['x-request-timeout']);
  const deadlineMs = appDeadline !== undefined && appDeadline < pool.timeoutMs ? appDeadline : pool.timeoutMs;
  const streamOptions = hasBody ? (chunked ? CHUNKED_BODY : FIXED_BODY) : NO_BODY;
  pool.retry.budget.requests++;

  const keepBody = (chunk: Buffer) => {
    if (body === null) return;
    bodySize += chunk.length;
    if (bodySize > pool.retry.bufferLimit) {
      body = null; // too large to replay: this request will not be retried
      req.off('data', keepBody);
    } else body.push(chunk);
  };

  /** Lets go of the current attempt's stream: its events are no longer ours. */
  const abandon = () => {
    const old = upstream;
    upstream = undefined;
    if (old === undefined) return;
    old.off('response', onResponse);
    old.off('trailers', onTrailers);
    old.off('error', onStreamError);
    old.off('close', onStreamClose);
    old.off('timeout', onIdle);
    old.on('error', ignore);
    old.setTimeout(0);
    if (piped) req.unpipe(old);
    if (!old.closed) old.close(h2.NGHTTP2_CANCEL);
  };

  const attemptAgain = () => {
    retryTimer = undefined;
    if (failed || answered || res.destroyed) return;
    pool.openStream(headers, streamOptions, onOpened, onOpenFailed, lastEndpoint);
  };

  /**
   * The attempt failed before anything of the response reached the app: schedules another
   * when that is safe, allowed and in time (true), else false and the caller answers as before.
   */
  const tryRetry = (reason: RetryReason, retryAfter?: unknown): boolean => {
    if (answered || failed || res.destroyed) return false;
    if (!isRetryableRequest(exchange.method, reqHeaders) || expectsContinue(reqHeaders.expect)) return false;
    if (piped && (body === null || !req.readableEnded)) return false;
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

  const onIdle = () => fail(upstreamTimeout(endpointKey, pool.idleTimeoutMs, 'sent or received nothing'));

  const onResponse = (head: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
    if (answered) return;
    const status = Number(head[':status']);
    if ((status === 503 || status === 429) && tryRetry(status === 503 ? 'status_503' : 'status_429', head['retry-after'])) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const out = forwardableHeaders(head);
    if (ctx.draining) out.connection = 'close';
    try {
      res.writeHead(status, out);
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
    const up = upstream as UpstreamStream;
    // pipe() without its per-request set of listeners on both streams; same backpressure
    up.on('data', onUpstreamData);
    up.on('end', onUpstreamEnd);
    countBody(up, exchange, 'out');
  };

  const onUpstreamData = (chunk: Buffer) => {
    if (res.destroyed || res.writableEnded) return; // the app is gone; 'close' cancels the stream
    if (!res.write(chunk)) {
      const up = upstream as UpstreamStream;
      up.pause();
      res.once('drain', () => up.resume());
    }
  };

  // Node ends a reset stream's readable side like a finished one (then destroys it), so a
  // plain pipe would close a truncated chunked response as if it were whole: check the code.
  const onUpstreamEnd = () => {
    const code = (upstream as UpstreamStream).rstCode;
    if (code !== undefined && code !== h2.NGHTTP2_NO_ERROR) fail(upstreamReset(endpointKey, `code ${code}`));
    else res.end();
  };

  const onTrailers = (trailers: IncomingHttpHeaders) => {
    // sent only if the response is chunked; with a content-length HTTP/1.1 has nowhere to put them
    if (!res.destroyed) {
      try {
        res.addTrailers(forwardableHeaders(trailers) as Record<string, string>);
      } catch {
        // an invalid trailer from the upstream is dropped, not fatal
      }
    }
  };

  const onStreamError = (err: Error) => {
    if (!answered && tryRetry('reset')) return;
    fail(upstreamReset(endpointKey, describeError(err)));
  };

  const onStreamClose = () => {
    const stream = upstream as UpstreamStream;
    if (!answered && tryRetry('reset')) return;
    if (!answered) fail(upstreamReset(endpointKey, `stream closed with code ${stream.rstCode ?? 'unknown'} before a response`));
    else if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR && !res.writableEnded) fail(upstreamReset(endpointKey, `code ${stream.rstCode}`));
  };

  const onOpened = (stream: UpstreamStream, endpoint: UpstreamEndpoint) => {
    endpointKey = endpoint.key;
    exchange.endpoint = endpoint.key;
    lastEndpoint = endpoint;
    if (answered || failed || res.destroyed) {
      stream.close(h2.NGHTTP2_CANCEL);
      return;
    }
    upstream = stream;
    stream.on('response', onResponse);
    stream.on('trailers', onTrailers);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    stream.setTimeout(pool.idleTimeoutMs, onIdle);
    if (expectsContinue(reqHeaders.expect)) {
      relayContinue(stream, continueGraceMs(pool.timeoutMs), () => {
        if (!res.headersSent) res.writeContinue();
      });
    }
    if (hasBody) {
      if (chunked) stream.on('wantTrailers', () => stream.sendTrailers(forwardableHeaders(req.trailers)));
      if (!piped) {
        piped = true;
        req.pipe(stream);
        countBody(req, exchange, 'in');
        // kept for replay while it goes by (no added latency), if a retry could use it
        if (pool.retry.attempts > 0 && isRetryableRequest(exchange.method, reqHeaders) && !expectsContinue(reqHeaders.expect) && !(Number(length) > pool.retry.bufferLimit)) {
          body = [];
          req.on('data', keepBody);
        }
      } else {
        const kept = body ?? [];
        stream.end(kept.length === 1 ? kept[0] : Buffer.concat(kept));
      }
    }
  };

  const onOpenFailed = (err: unknown) => {
    const error = isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${pool.name}: ${describeError(err)}`, { cause: err });
    if (error.code === 'upstream_unavailable' && tryRetry('connect_failure')) return;
    fail(error);
  };

  timer = setTimeout(() => fail(upstreamTimeout(pool.name, deadlineMs)), deadlineMs);
  pool.openStream(headers, streamOptions, onOpened, onOpenFailed);
}

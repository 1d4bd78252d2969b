// One h2c stream from the app (HTTP/2 with prior knowledge, e.g. a gRPC client), carried to
// its upstream as a stream on a pooled mTLS session. Both directions are piped (HTTP/2 flow
// control on each side is the backpressure) and trailers cross intact both ways: responses
// with a body are sent with waitForTrailers and finished with the upstream's trailers, or an
// empty END_STREAM when it sent none, so gRPC's grpc-status arrives where the client expects
// it. A trailers-only answer (HEADERS with END_STREAM) is relayed as exactly that.

import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { requestIdOf } from '../http/request-id.js';
import { statusFor } from '../http/status.js';
import { sendStreamError } from '../http/status.js';
import { continueGraceMs, expectsContinue, relayContinue } from './expect-continue.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { hostName, pathOnly } from './router.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { upstreamReset, upstreamTimeout } from './upstream-errors.js';

const NO_BODY = Object.freeze({ endStream: true });
const WITH_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const RESPOND_END = Object.freeze({ endStream: true });
const RESPOND_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const CONTINUE = Object.freeze({ ':status': 100 });
const PIPE_NO_END = Object.freeze({ end: false });
const NO_TRAILERS: OutgoingHttpHeaders = Object.freeze({}) as OutgoingHttpHeaders;

function ignore(): void {}

export function forwardH2c(ctx: OutboundContext, stream: ServerHttp2Stream, reqHeaders: IncomingHttpHeaders): void {
  const method = reqHeaders[':method'] ?? 'GET';
  const path = reqHeaders[':path'];
  const exchange = new Exchange(ctx.observer, method, requestIdOf(reqHeaders));
  if (path !== undefined) exchange.path = pathOnly(path);
  const authority = reqHeaders[':authority'] ?? reqHeaders.host;
  const pool = ctx.router.lookup(authority);

  ctx.activity.enter();
  stream.on('error', ignore); // a reset by the app surfaces as 'close'; nothing to add

  let upstream: ClientHttp2Stream | undefined;
  let timer: NodeJS.Timeout | undefined;
  let answered = false;
  let failed = false;
  let endpointKey = '';
  let requestTrailers: OutgoingHttpHeaders = NO_TRAILERS;
  let responseTrailers: OutgoingHttpHeaders = NO_TRAILERS;

  const fail = (err: MeshcarError, rstCode?: number) => {
    if (failed) return;
    failed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
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
    exchange.status = statusFor(err.code);
    sendStreamError(stream, err, exchange.requestId);
  };

  stream.on('close', () => {
    if (timer) clearTimeout(timer);
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

  const onResponse = (head: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => {
    if (answered) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const up = upstream as ClientHttp2Stream;
    if (stream.destroyed || stream.closed) {
      up.close(h2.NGHTTP2_CANCEL);
      return;
    }
    const status = Number(head[':status']);
    const out = forwardableHeaders(head);
    out[':status'] = status;
    const ends = (flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0;
    try {
      stream.respond(out, ends ? RESPOND_END : RESPOND_BODY);
    } catch (err) {
      fail(new MeshcarError('bad_gateway', `the upstream answered with a head that cannot be relayed: ${describeError(err)}`));
      return;
    }
    answered = true;
    exchange.status = status;
    if (ends) {
      up.resume();
      return;
    }
    stream.on('wantTrailers', () => stream.sendTrailers(responseTrailers));
    // Node ends a reset stream's readable side like a finished one: check the code at the end
    up.pipe(stream, PIPE_NO_END);
    up.on('end', () => {
      if (up.rstCode !== undefined && up.rstCode !== h2.NGHTTP2_NO_ERROR) fail(upstreamReset(endpointKey, `code ${up.rstCode}`), up.rstCode);
      else stream.end();
    });
  };

  const onOpened = (up: ClientHttp2Stream, endpoint: UpstreamEndpoint) => {
    endpointKey = endpoint.key;
    exchange.endpoint = endpoint.key;
    if (answered || stream.closed || stream.destroyed) {
      up.close(h2.NGHTTP2_CANCEL);
      return;
    }
    upstream = up;
    up.on('response', onResponse);
    up.on('trailers', (trailers: IncomingHttpHeaders) => {
      responseTrailers = forwardableHeaders(trailers);
    });
    up.on('error', (err: Error) => fail(upstreamReset(endpointKey, describeError(err)), up.rstCode));
    up.on('close', () => {
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
      // an app that resets its stream mid-body must not look like one that finished it
      stream.pipe(up, PIPE_NO_END);
      stream.on('end', () => {
        if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) up.close(h2.NGHTTP2_CANCEL);
        else if (!up.destroyed) up.end();
      });
    }
  };

  const onOpenFailed = (err: unknown) => {
    fail(isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${pool.name}: ${describeError(err)}`, { cause: err }));
  };

  timer = setTimeout(() => fail(upstreamTimeout(pool.name, pool.timeoutMs)), pool.timeoutMs);
  pool.openStream(headers, hasBody ? WITH_BODY : NO_BODY, onOpened, onOpenFailed);
}

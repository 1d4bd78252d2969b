// One HTTP/1.1 request from the app, carried to its upstream as an HTTP/2 stream on a pooled
// mTLS session, and the answer carried back. Bodies are piped both ways, so flow control on
// each hop is the backpressure; nothing is buffered here. Chunked request trailers travel as
// HTTP/2 trailers; response trailers go back on chunked responses; `Expect: 100-continue` is
// relayed (the upstream's 100 becomes ours). Failures before the response head become JSON
// errors (x-meshcar-error); after it, the connection is cut, since a status was already promised.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2, type ClientHttp2Stream, type IncomingHttpStatusHeader } from 'node:http2';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import { requestIdOf } from '../http/request-id.js';
import { statusFor } from '../http/status.js';
import { sendError } from '../http/status.js';
import { continueGraceMs, expectsContinue, relayContinue } from './expect-continue.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { hostName, parseRequestTarget, pathOnly } from './router.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { upstreamReset, upstreamTimeout } from './upstream-errors.js';

// Events that fire once are listened to with on(): once() wraps every listener in another
// closure, and this runs on every request.

// stream options, shared (Node copies them)
const NO_BODY = Object.freeze({ endStream: true });
const FIXED_BODY = Object.freeze({ endStream: false });
const CHUNKED_BODY = Object.freeze({ endStream: false, waitForTrailers: true });

export function forwardHttp1(ctx: OutboundContext, req: IncomingMessage, res: ServerResponse): void {
  const reqHeaders = req.headers;
  const exchange = new Exchange(ctx.observer, req.method ?? 'GET', requestIdOf(reqHeaders));
  const target = parseRequestTarget(req.url);
  exchange.path = pathOnly(target.path);
  const authority = target.authority ?? reqHeaders.host;
  const pool = ctx.router.lookup(authority);

  ctx.activity.enter();
  if (ctx.draining) res.setHeader('connection', 'close');

  let upstream: ClientHttp2Stream | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** A response head is decided: the upstream's, or one of ours. */
  let answered = false;
  /** fail() ran: later events of the (cancelled) upstream stream are echoes, not news. */
  let failed = false;
  let endpointKey = '';

  const fail = (err: MeshcarError) => {
    if (failed) return;
    failed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
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
    exchange.status = statusFor(err.code);
    sendError(res, err, { requestId: exchange.requestId });
  };

  res.on('close', () => {
    if (timer) clearTimeout(timer);
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
  const hasBody = chunked || (length !== undefined && length !== '0');

  const onResponse = (head: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
    if (answered) return;
    if (timer) clearTimeout(timer);
    timer = undefined;
    const status = Number(head[':status']);
    const out = forwardableHeaders(head);
    if (ctx.draining) out.connection = 'close';
    try {
      res.writeHead(status, out);
    } catch (err) {
      fail(new MeshcarError('bad_gateway', `the upstream answered with a head that cannot be relayed: ${describeError(err)}`));
      return;
    }
    answered = true;
    exchange.status = status;
    const up = upstream as ClientHttp2Stream;
    // pipe() without its per-request set of listeners on both streams; same backpressure
    up.on('data', onUpstreamData);
    up.on('end', onUpstreamEnd);
  };

  const onUpstreamData = (chunk: Buffer) => {
    if (res.destroyed || res.writableEnded) return; // the app is gone; 'close' cancels the stream
    if (!res.write(chunk)) {
      const up = upstream as ClientHttp2Stream;
      up.pause();
      res.once('drain', () => up.resume());
    }
  };

  // Node ends a reset stream's readable side like a finished one (then destroys it), so a
  // plain pipe would close a truncated chunked response as if it were whole: check the code.
  const onUpstreamEnd = () => {
    const code = (upstream as ClientHttp2Stream).rstCode;
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

  const onStreamError = (err: Error) => fail(upstreamReset(endpointKey, describeError(err)));

  const onStreamClose = () => {
    const stream = upstream as ClientHttp2Stream;
    if (!answered) fail(upstreamReset(endpointKey, `stream closed with code ${stream.rstCode ?? 'unknown'} before a response`));
    else if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR && !res.writableEnded) fail(upstreamReset(endpointKey, `code ${stream.rstCode}`));
  };

  const onOpened = (stream: ClientHttp2Stream, endpoint: UpstreamEndpoint) => {
    endpointKey = endpoint.key;
    exchange.endpoint = endpoint.key;
    if (answered || res.destroyed) {
      stream.close(h2.NGHTTP2_CANCEL);
      return;
    }
    upstream = stream;
    stream.on('response', onResponse);
    stream.on('trailers', onTrailers);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    if (expectsContinue(reqHeaders.expect)) {
      relayContinue(stream, continueGraceMs(pool.timeoutMs), () => {
        if (!res.headersSent) res.writeContinue();
      });
    }
    if (hasBody) {
      if (chunked) stream.on('wantTrailers', () => stream.sendTrailers(forwardableHeaders(req.trailers)));
      req.pipe(stream);
    }
  };

  const onOpenFailed = (err: unknown) => {
    fail(isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${pool.name}: ${describeError(err)}`, { cause: err }));
  };

  timer = setTimeout(() => fail(upstreamTimeout(pool.name, pool.timeoutMs)), pool.timeoutMs);
  pool.openStream(headers, hasBody ? (chunked ? CHUNKED_BODY : FIXED_BODY) : NO_BODY, onOpened, onOpenFailed);
}

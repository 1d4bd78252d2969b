// Every request from a verified caller, whichever server took it: the entry points (an HTTP/1.1
// request or Upgrade, a Node HTTP/2 stream; the meshcar codec's streams come through
// caller-connections.ts) make its Exchange, then the per-request policy runs: a plain path, an
// allowed caller, the rate limit, the timers, the OpenAPI check (schema-check.ts, when a spec
// is configured), and the forwarder to the local app. Also the HTTP/1.1 requests Node could
// not parse. Plain functions of the listener (inbound.ts) that find the caller noted on the
// socket or session: no closure or extra object per request.

import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { MeshcarError } from '../errors.js';
import { announcesBody, transferCodingProblem } from '../http/body-framing.js';
import { refuseEarlyEnd } from '../http/early-end.js';
import { headListBytes } from '../http/head-list-bytes.js';
import { hostFieldProblem } from '../http/host-field.js';
import { parseRequestTarget, targetShapeProblem } from '../http/absolute-form.js';
import { measuredHeadProblem } from '../http/head-size.js';
import { expectationError } from '../http/expectation.js';
import { mayAnswer, parserRefusal, refusedRequest } from '../http/client-error.js';
import { rawErrorResponse } from '../http/status.js';
import { refuseInTurn } from '../http/pipelined-turns.js';
import { lingeringClose } from '../http/lingering-close.js';
import { requestIdOf } from '../http/request-id.js';
import { offersH2c } from '../http/upgrade.js';
import type { Caller } from './caller.js';
import { DONE, type Exchange } from './exchange.js';
import { bindExchange, exchangeOf } from './exchange-links.js';
import { startTimers } from './exchange-deadlines.js';
import { onRequestData } from './exchange-relay.js';
import type { AppForwarder } from './forwarder.js';
import { Http1Exchange } from './http1-exchange.js';
import { Http2Exchange } from './http2-exchange.js';
import type { InboundListener } from './inbound.js';
import { authorityProblem, namesNoSite } from '../http/authority.js';
import { pathProblem, queryProblem } from '../http/request-target.js';
import { guardOf } from './reset-guard.js';
import { screenRequest } from './schema-check.js';
import { declaresEmptyBody, holdUntilEnd } from './empty-body-hold.js';
import { callerDeadlineMs } from './timeouts.js';
import { leftOut } from '../log-per-key.js';

/** Said with a method Node's HTTP/1.1 parser does not know: HTTP/2 (ALPN h2, as sidecars speak it) carries any. */
const INBOUND_OTHER_METHODS = 'HTTP/2 (ALPN h2, as a calling sidecar speaks it) carries any method';

/** The caller of a connection, noted on its socket (and HTTP/2 session) when it was verified. */
export const kCaller = Symbol('meshcar.inbound.caller');

export interface WithCaller {
  [kCaller]?: Caller;
}

export function onHttp1Request(inbound: InboundListener, req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
  // the rest of a pipelined write Node parses after a cut (cutPipelining): not answered
  if (req.socket.destroyed) return;
  const caller = (req.socket as WithCaller)[kCaller] as Caller;
  const exchange = new Http1Exchange(req, res, caller, inbound, expectsContinue);
  const tooLarge = measuredHeadProblem(req);
  if (tooLarge !== undefined) refuseHead(inbound, exchange, 'headers_too_large', tooLarge);
  else handle(inbound, exchange, inbound.app);
}

/** An Expect this listener cannot meet: 417 before authorization, recorded as any refusal; the connection closes (the body is not read). */
export function onUnmetExpectation(inbound: InboundListener, req: IncomingMessage, res: ServerResponse): void {
  if (req.socket.destroyed) return;
  const exchange = new Http1Exchange(req, res, (req.socket as WithCaller)[kCaller] as Caller, inbound, false);
  const tooLarge = measuredHeadProblem(req);
  refuseHead(inbound, exchange, tooLarge === undefined ? 'expectation_failed' : 'headers_too_large', tooLarge ?? expectationError(req).message);
}

/** A head refused before authorization, recorded as any refusal; the connection closes (the body is not read, and a head over the limit says nothing trustworthy of where the next starts). */
function refuseHead(inbound: InboundListener, exchange: Http1Exchange, code: 'expectation_failed' | 'headers_too_large', message: string): void {
  // as handle(): the refusal's answer must be taken within the idle timeout too
  const route = inbound.timeouts.forPath(exchange.path);
  startTimers(exchange, route.timeoutMs, callerDeadlineMs(exchange.requestHeaders), route.idleTimeoutMs, route.timeoutKey, route.idleTimeoutKey);
  exchange.res.setHeader('connection', 'close');
  exchange.fail(code, message);
}

export function onUpgrade(inbound: InboundListener, req: IncomingMessage, socket: Socket, head: Buffer): void {
  if (refusePipelined(inbound, socket, 'Upgrade')) return;
  const caller = (socket as WithCaller)[kCaller] as Caller;
  let exchange: Http1Exchange;
  try {
    exchange = Http1Exchange.forUpgrade(req, socket, head, caller, inbound, inbound.timeouts.tunnelIdleTimeoutMs);
  } catch (err) {
    // nothing the caller sends may end the process: a socket Node will not hand over is closed
    inbound.logger.warn({ err: (err as Error).message, remote: socket.remoteAddress }, 'inbound Upgrade could not take its connection');
    socket.destroy();
    return;
  }
  // a head over the limit as written (http1-server.ts measures every head as it arrives)
  const tooLarge = measuredHeadProblem(req);
  if (tooLarge !== undefined) {
    exchange.fail('headers_too_large', tooLarge);
    return;
  }
  // h2c over TLS does not exist (RFC 9113), and a tunnel would let later requests skip authorization
  if (offersH2c(req.headers.upgrade)) {
    exchange.fail('bad_request', 'Upgrade: h2c is not supported; use ALPN h2');
    return;
  }
  // bytes after an Upgrade head belong to the new protocol; a body announced with it would
  // have to be framed twice over, and an app that answers without reading it desyncs
  if (announcesBody(req.headers)) {
    exchange.fail('bad_request', 'an Upgrade request cannot carry a body (Content-Length or Transfer-Encoding)');
    return;
  }
  handle(inbound, exchange, inbound.upgrades);
}

/** http2.codec node: a stream of a session onSession (caller-connections.ts) took in. */
export function onStream(inbound: InboundListener, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: readonly string[]): void {
  const caller = (stream.session as WithCaller | undefined)?.[kCaller];
  if (caller === undefined) {
    // The session is gone (closed for abuse: Node still hands over the streams nghttp2 reads
    // after it). Such a stream may be closed with an error before our REFUSED_STREAM goes out
    // (nghttp2 resets a body shorter than its content-length): unheard, Node throws that
    // error and the process ends.
    stream.on('error', ignoreError);
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    return;
  }
  // Node holds a head to 256 fields but, on streams opened before the caller acknowledged our
  // SETTINGS, not to maxHeaderListSize: a caller's HPACK bomb reached the app as a 1 MB head
  // (head-list-bytes.ts). Reset as Node resets a head over its limits.
  if (headListBytes(rawHeaders) > (inbound.h2Limits.maxHeaderListSize ?? Infinity)) {
    // Node emits our own reset code as 'error' on the stream: unheard, it would end the process
    stream.on('error', ignoreError);
    stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    return;
  }
  const requestHasBody = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0;
  if (requestHasBody) refuseEarlyEnd(stream);
  // A request without a body is read (to its end) at once: Node's server resets a stream whose
  // request nobody read with NO_ERROR as soon as its answer is handed to nghttp2, which sends
  // that reset ahead of the answer's END_STREAM when the caller's window holds it back: the
  // caller's outbound then has a body without its end (50 concurrent 10 MB downloads through a
  // pair on http2.codec node: 16-31 came whole; the rest reset at their last chunk)
  else stream.resume();
  handle(inbound, new Http2Exchange(stream, headers, requestHasBody, caller, inbound, guardOf(stream.session)), inbound.app);
}

function ignoreError(): void {}

/** The per-request policy: a plain path, an allowed caller, then the app. */
export function handle(inbound: InboundListener, exchange: Exchange, forwarder: AppForwarder): void {
  const route = inbound.timeouts.forPath(exchange.path);
  // the route's timeout runs from the end of the request body; the caller's own deadline
  // (grpc-timeout, x-request-timeout) from now: it may shorten the wait, never lengthen it
  // (started before the checks: a refusal's answer must be taken within the idle timeout too;
  // and before the schema check: a body read for validation ends the request like any other)
  startTimers(exchange, route.timeoutMs, callerDeadlineMs(exchange.requestHeaders), route.idleTimeoutMs, route.timeoutKey, route.idleTimeoutKey);
  // the asterisk form is OPTIONS's alone (RFC 9110 §7.1; HTTP/2's codecs reset any other)
  if (exchange.path === '*' && exchange.method !== 'OPTIONS') {
    exchange.fail('bad_request', 'the request target * is for OPTIONS only');
    return;
  }
  // a `#` in the query too: an app reading the target as a URL drops it and the rest of the
  // query, which an OpenAPI check of the query read whole (the outbound refuses it anywhere);
  // and a raw character outside ASCII there, as in the path
  const pathRefused = pathProblem(exchange.path) ?? queryProblem(exchange.target);
  if (pathRefused !== undefined) {
    // an HTTP/1.1 absolute-form target still here had a shape its conversion to origin form
    // refused; an HTTP/2 :path is never absolute-form (RFC 9113 §8.3.1): it just does not start with /
    if (exchange instanceof Http1Exchange && /^https?:\/\//i.test(exchange.path)) {
      exchange.fail('bad_request', targetShapeProblem(parseRequestTarget(exchange.path)) ?? 'an absolute-form request target must carry no fragment (#)');
      return;
    }
    exchange.fail('bad_request', `the request path must be a plain absolute path: ${pathRefused}`);
    return;
  }
  // (an HTTP/1.1 request has no :authority: Node's parser refuses a ':' in a field name)
  const http1 = exchange instanceof Http1Exchange ? exchange.req : undefined;
  // (Node's own check of a missing Host is off: its answer is a bare 400, ours JSON)
  const authority = exchange.requestHeaders[':authority'] as string | undefined;
  const authorityRefused = (http1 === undefined ? undefined : hostFieldProblem(http1)) ?? authorityProblem(authority, exchange.requestHeaders.host) ?? (http1 === undefined ? namesNoSite(authority, exchange.requestHeaders.host) : undefined);
  if (authorityRefused !== undefined) {
    exchange.fail('bad_request', authorityRefused);
    return;
  }
  const codingRefused = http1 === undefined ? undefined : transferCodingProblem(http1.headers);
  if (codingRefused !== undefined) {
    exchange.fail('unsupported_transfer_coding', codingRefused);
    return;
  }
  if (!exchange.caller.grantUnder(inbound.policy).allows(exchange.method, exchange.path)) {
    exchange.fail('forbidden', `${exchange.caller.id.uri} is not allowed to ${exchange.method} ${exchange.path}: no rule of the called sidecar's inbound.authorize allows it`);
    return;
  }
  if (inbound.rateLimiter !== undefined) {
    const refusal = inbound.rateLimiter.take(exchange.caller);
    if (refusal !== undefined) {
      const whose = refusal.scope === 'identity' ? `${exchange.caller.id.uri} sends more requests than its rate limit` : 'this service receives more requests than its total rate limit';
      exchange.fail('rate_limited', `${whose}; retry later`, refusal.retryAfterSeconds);
      return;
    }
  }
  // content-length: 0 with the stream left open: nothing goes on until it ends (empty-body-hold.ts)
  if (declaresEmptyBody(exchange)) holdUntilEnd(exchange, (held) => toAppChecked(inbound, held, forwarder));
  else toAppChecked(inbound, exchange, forwarder);
}

/** The request, allowed, to the app: through the OpenAPI check when there is one. */
function toAppChecked(inbound: InboundListener, exchange: Exchange, forwarder: AppForwarder): void {
  if (inbound.schema === undefined) toApp(exchange, forwarder);
  else if (forwarder === inbound.app) screenRequest(exchange, inbound.schema, inbound.toApp);
  // an Upgrade's head is checked too (it has no body): an app without an upgrade handler
  // answers it as an ordinary request, so an unchecked one would be a way around the spec
  else screenRequest(exchange, inbound.schema, (checked) => toApp(checked, forwarder));
}

/** The request goes to the app (the forwarder builds the head it needs: see appHeadersOf). */
export function toApp(exchange: Exchange, forwarder: AppForwarder): void {
  forwarder.forward(exchange);
  if (exchange.requestHasBody && exchange.phase !== DONE) {
    // added after the forwarder's pipe(), so it does not change the body's flow
    bindExchange(exchange.requestBody, exchange);
    exchange.requestBody.on('data', onRequestData);
  }
}

/** A request Node could not parse (or that outgrew the header limit): answer and close. */
export function onClientError(inbound: InboundListener, err: NodeJS.ErrnoException, socket: Socket): void {
  const broken = brokenBodyOf(err, socket);
  if (broken !== undefined) {
    // the body of the request in flight broke (a chunk size that is not hex, a trailer Node
    // refuses): Node tells that request nothing, so it waited for the app, and the app for the
    // body's end, until the idle timeout. Its exchange answers 400 (or cuts an answer begun) and
    // cancels the app's request, as the outbound's forwarder does; nothing more is read
    inbound.tracker.closeWhenIdle(socket);
    broken.fail('bad_request', parserRefusal(err, { headTooLarge: '' }).message);
    if (!inbound.tracker.busy(socket)) lingeringClose(socket);
    return;
  }
  if (err.code !== 'ECONNRESET' && socket.writable && inbound.tracker.busy(socket)) {
    // pipelined behind a request still unanswered: a refusal written now would be read as that
    // (forwarded) request's answer, so its answer goes out first, then the connection closes
    inbound.tracker.closeWhenIdle(socket);
    // a request waiting its turn whose body broke: refused in its turn, never forwarded
    const waiting = readingOf(socket);
    const refusal = parserRefusal(err, { headTooLarge: 'the request head is larger than this sidecar takes (inbound.limits.maxHeaderListSize)', otherMethods: INBOUND_OTHER_METHODS });
    const record = () => inbound.observer.requestRefused?.(refusedRequest('inbound', (socket as WithCaller)[kCaller]?.peer ?? 'unknown', refusal));
    if (waiting !== undefined) refuseInTurn(waiting, refusal, record);
    // a head the parser refused: no request to answer in turn, but a refusal all the same,
    // counted as the one not pipelined is (it went unrecorded, not even logged)
    else record();
    return;
  }
  if (!mayAnswer(err, socket)) {
    socket.destroy();
    return;
  }
  const refusal = parserRefusal(err, { headTooLarge: 'the request head is larger than this sidecar takes (inbound.limits.maxHeaderListSize)', otherMethods: INBOUND_OTHER_METHODS });
  const response = rawErrorResponse(refusal);
  inbound.logger.debug({ code: err.code, remote: socket.remoteAddress }, 'inbound request refused by the HTTP parser');
  inbound.observer.requestRefused?.(refusedRequest('inbound', (socket as WithCaller)[kCaller]?.peer ?? 'unknown', refusal));
  // the caller may still be sending the head (or the body) the refusal is about: it gets to read it
  socket.end(response);
  lingeringClose(socket);
}

/** The exchange of the request whose body Node's parser was reading when it failed, if there is one. */
function brokenBodyOf(err: NodeJS.ErrnoException, socket: Socket): Exchange | undefined {
  // the caller left mid-body (its FIN: HPE_INVALID_EOF_STATE; its reset): no broken body, a
  // caller gone, which the exchange records as a reset when the connection closes
  if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') return undefined;
  const reading = readingOf(socket);
  return reading && exchangeOf<Exchange>(reading);
}

/** The request whose body Node's parser is reading on `socket`, if one is unfinished. */
function readingOf(socket: Socket): IncomingMessage | undefined {
  const reading = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  return reading === undefined || reading === null || reading.complete ? undefined : reading;
}

/**
 * Node hands over every request a caller pipelines at once, each held until its turn
 * (src/http/pipelined-turns.ts): one connection writing 20,000 GETs and reading nothing held
 * them all (+105 MB RSS, each forwarded before the turns), past any stream limit. Beyond
 * inbound.maxPipelined the connection is closed, as on the admin port; no sidecar pipelines,
 * few clients do.
 */
export function cutPipelining(inbound: InboundListener, socket: Socket): void {
  if (socket.destroyed) return;
  const remote = socket.remoteAddress ?? 'unknown';
  inbound.observer.inboundConnectionRefused?.('pipelined');
  const through = inbound.pipelineCuts.take(remote);
  if (through) inbound.logger.warn({ remote, peer: (socket as WithCaller)[kCaller]?.id.uri }, `inbound connection closed: more than ${inbound.maxPipelined} requests pipelined without reading the answers${leftOut(through, `from ${remote}`)}`);
  socket.destroy();
}

/**
 * An Upgrade or CONNECT pipelined behind a request still unanswered on the same connection:
 * its answer (a 101, a tunnel, or our refusal) cannot come before the earlier one's, and the
 * earlier response holds the connection (Node's ServerResponse will not give it up), so the
 * connection closes once the requests before it are answered, their answers first (it was
 * closed at once, and a request the app had carried out lost its answer). True: refused.
 */
function refusePipelined(inbound: InboundListener, socket: Socket, what: string): boolean {
  if (!inbound.tracker.busy(socket)) return false;
  inbound.logger.debug({ remote: socket.remoteAddress }, `inbound ${what} pipelined behind an unanswered request: the connection closes after its answer`);
  inbound.tracker.closeWhenIdle(socket);
  return true;
}

/** An HTTP/1.1 CONNECT: no tunnels through the inbound side (400 bad_request, as for an HTTP/2 CONNECT), then the connection closes. */
export function onConnect(inbound: InboundListener, req: IncomingMessage, socket: Socket): void {
  if (refusePipelined(inbound, socket, 'CONNECT')) return;
  inbound.logger.debug({ remote: socket.remoteAddress, target: req.url }, 'inbound CONNECT refused');
  // a CONNECT head was read: its x-request-id (or one made for it), as every answer to a request carries
  const refusal = new MeshcarError('bad_request', 'CONNECT is not supported: the inbound side forwards requests to its app, it opens no tunnels');
  const requestId = requestIdOf(req.headers);
  socket.end(rawErrorResponse(refusal, requestId));
  socket.destroySoon();
  inbound.observer.requestRefused?.(refusedRequest('inbound', (socket as WithCaller)[kCaller]?.peer ?? 'unknown', refusal, { method: 'CONNECT', requestId }));
}

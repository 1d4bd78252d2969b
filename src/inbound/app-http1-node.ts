// Forwards exchanges to an HTTP/1.1 app with node:http, for the two kinds of request the
// undici pool (app-http1.ts) cannot carry: Upgrade requests (WebSocket), on connections of
// their own, and `Expect` requests, whose body waits for the app's 100 Continue. Bodies are
// piped both ways, so backpressure reaches the far side; the request's end is ours to write,
// and only a body that arrived whole ends it (a connection is cut rather than desynchronized).
//
// Listeners are module-level functions that find their exchange on the emitter (see
// exchange.ts): a forwarded request allocates its ClientRequest and nothing per listener.

import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { frameRequestBody, responseCodingProblem } from '../http/body-framing.js';
import { forwardableHeaders } from '../http/hop-by-hop.js';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { appAddressForCallers, classifyAppError } from './app-errors.js';
import { failOnApp, mayResendAfterBreak } from './app-failure.js';
import { APP_CLIENT_ERRORS, appClientError, DEFAULT_MAX_WAITING, queueFullError } from './app-dispatch.js';
import { switchFieldsMissing, unofferedProtocol } from '../http/upgrade.js';
import { clip } from '../clip.js';
import { STREAMING, WAITING, type Exchange } from './exchange.js';
import { bindExchange, exchangeOf } from './exchange-links.js';
import { relayBody } from './exchange-relay.js';
import { Http1Exchange } from './http1-exchange.js';
import type { AppForwarder } from './forwarder.js';
import { appHeadersOf } from './app-headers.js';
import { HangUpHoldingAgent } from './app-write-hang-up.js';
import { AgentTurns } from './app-agent-turns.js';
import { APP_ANSWER_HEAD_BYTES } from './answer-head-limit.js';

export interface NodeHttp1AppOptions {
  readonly keepAlive: boolean;
  /** Sockets to the app at most; requests beyond wait in the agent's queue. */
  readonly maxSockets?: number;
  /** Requests that may wait in that queue (inbound.limits.maxAppWaiting); default 1000, then 503 overloaded. */
  readonly maxWaiting?: number;
}

/**
 * Requests waiting in the agent's queue, for every origin it has (one: the app). One its caller
 * gave up on is destroyed but stays listed until a socket comes for it: not counted, or dead
 * requests kept live callers' places (the review of the bound).
 */
function waitingIn(agent: http.Agent): number {
  let waiting = 0;
  for (const name in agent.requests) {
    for (const req of agent.requests[name] ?? []) if (!req.destroyed) waiting++;
  }
  return waiting;
}

export class NodeHttp1App implements AppForwarder {
  readonly label: string;
  /** The app's address as a refusal may tell callers (app-errors.ts); undefined: not told. */
  readonly toldAddress: string | undefined;
  private readonly agent: http.Agent;
  private readonly maxWaiting: number;
  /** Each caller's share of the agent's sockets, and the turns of those past it. */
  readonly turns: AgentTurns;

  constructor(
    private readonly address: HostPort,
    options: NodeHttp1AppOptions,
  ) {
    this.label = formatHostPort(address);
    this.toldAddress = appAddressForCallers(address);
    this.maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING;
    // a write the app's hang-up failed is held: the answer it gave first is read (app-write-hang-up.ts)
    this.agent = new HangUpHoldingAgent({
      keepAlive: options.keepAlive,
      maxSockets: options.maxSockets ?? 256,
      maxFreeSockets: 64,
      // LIFO: a few hot sockets serve the load and the rest idle out; FIFO would keep all warm
      scheduling: 'lifo',
      // idle pooled sockets close after this; Node also honours the app's Keep-Alive: timeout hint
      timeout: 30_000,
    });
    this.turns = new AgentTurns(options.maxSockets ?? 256, this.maxWaiting, () => waitingIn(this.agent), (exchange) => this.send(exchange));
  }

  forward(exchange: Exchange): void {
    // the exchange's timers (response head, idle) were started by the handler
    exchange.forwarder = this;
    // an Upgrade has a connection of its own for its life, bounded per caller by maxConnectionsPerCaller
    if (exchange instanceof Http1Exchange && exchange.upgradeHead !== undefined) this.send(exchange);
    else this.turns.enter(exchange);
  }

  /** One attempt; a second only for a bodiless, repeatable request that met a stale keep-alive socket. */
  send(exchange: Exchange): void {
    // the agent's queue has no bound of its own: each request held there its head and exchange
    // until the idle timeout (Expect and absolute-form requests, Upgrades: 256 tunnels hold
    // every socket for their life)
    if (waitingIn(this.agent) >= this.maxWaiting) {
      exchange.fail('overloaded', queueFullError(this.maxWaiting).message);
      this.turns.leave(exchange);
      return;
    }
    exchange.attempts++;
    const headers = appHeadersOf(exchange);
    // an HTTP/2 caller sends :authority, an HTTP/1.0 one maybe nothing; HTTP/1.1 requires Host
    if (headers.host === undefined) headers.host = exchange.authority ?? this.label;
    // hop-by-hop, and on HTTP/1.1 it would need `Connection: TE` (see REPLACED in app-headers.ts)
    delete headers.te;
    const upgrade = exchange instanceof Http1Exchange && exchange.upgradeHead !== undefined ? exchange.req.headers.upgrade : undefined;
    if (upgrade !== undefined) {
      headers.connection = 'Upgrade';
      headers.upgrade = upgrade;
    }
    // the app must find the end of this request where we end it, whatever the method
    frameRequestBody(headers, exchange.method, exchange.requestHasBody, exchange.requestHeaders);
    // a flat [name, value, ...] list: ClientRequest stores it as the head at once, where an
    // object costs a validated setHeader() per header first
    const list: Array<string | number | string[]> = [];
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) list.push(name, value);
    }
    let req: ClientRequest;
    try {
      req = http.request({
        agent: this.agent,
        host: this.address.host,
        port: this.address.port,
        method: exchange.method,
        path: exchange.target,
        headers: list as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        maxHeaderSize: APP_ANSWER_HEAD_BYTES,
        // plain TCP: no TLS server name to work out from the Host header for every request
        servername: '',
      } as http.RequestOptions);
    } catch (err) {
      exchange.fail('bad_request', `the request cannot be forwarded: ${(err as Error).message}`);
      this.turns.leave(exchange);
      return;
    }
    exchange.upstream = req;
    bindExchange(req, exchange);
    req.on('response', onResponse);
    req.on('error', onRequestError);
    req.on('close', onRequestClose);
    if (upgrade !== undefined) {
      req.on('upgrade', onUpgrade);
      req.end();
      return;
    }
    // a 101 with Upgrade and Connection: upgrade to a request that asked for none: without a
    // listener node:http drops the socket and emits neither 'response' nor 'error', so the
    // caller waited for the route's timeout (an Expect request: its idle timeout) for a 504
    req.on('upgrade', onUnaskedUpgrade);
    if (exchange.expectsContinue) {
      req.on('continue', onContinue);
      // the caller waits for 100 before sending its body, so the head must go out now
      req.flushHeaders();
    }
    if (!exchange.requestHasBody) {
      req.end();
      return;
    }
    // piped without its end: see onCallerBodyEnd
    const body = exchange.requestBody;
    bindExchange(body, exchange); // also a body the schema check replaced
    body.pipe(req, KEEP_OPEN);
    // a body that ended already (a replacement the schema check filled) gets no 'end' any more
    if (body.readableEnded) onCallerBodyEnd.call(body);
    else body.on('end', onCallerBodyEnd);
  }

  close(): void {
    this.agent.destroy();
  }

  // the requests waiting their turn (the agent keeps its own queue to itself: cut with the rest)
  refuseWaiting(): number {
    return this.turns.refuseWaiting();
  }
}

/** pipe() options: the request to the app is ended by onCallerBodyEnd, not by the pipe. */
const KEEP_OPEN = Object.freeze({ end: false });

/**
 * The caller's body ended. Node's HTTP/2 stream ends its body like a finished one when the
 * caller resets it once our answer is complete (RST_STREAM NO_ERROR): a pipe would then end
 * the request as if whole, and a connection short of its Content-Length would go back to the
 * pool, its app reading the next caller's request as the rest of this body (a smuggled
 * request, past authorization). A body that was reset, or that is not its Content-Length,
 * cuts the connection instead. (A clean end that comes after the stream closed is cut too:
 * the answer was complete by then, so only the connection's reuse is lost.)
 */
function onCallerBodyEnd(this: Readable): void {
  const exchange = exchangeOf(this);
  const req = exchange.upstream;
  if (!(req instanceof http.ClientRequest) || req.destroyed || req.writableEnded) return;
  if (!isWholeCallerBody(this, exchange)) req.destroy();
  else req.end();
}

/**
 * At the end of the caller's body (both HTTP/1.1 app clients ask): whether it came whole. Node's
 * Http2Stream, reset or not, is `closed` by now when the end came from the stream's close, not
 * from an END_STREAM (its rstCode is 0 until a reset, so says nothing about NO_ERROR).
 */
export function isWholeCallerBody(body: Readable, exchange: Exchange): boolean {
  const stream = body as Readable & { aborted?: boolean };
  return stream.aborted !== true && !stream.closed && wholeBody(exchange);
}

/**
 * Whether the body that came is the Content-Length the caller announced (or announced none).
 * Both codecs and the HTTP/1.1 parser already refuse a mismatch; this is the last check before
 * a request is finished on a connection that will be reused. (Node's own strictContentLength
 * throws from write() when a body runs long, which inside a pipe would be uncaught.)
 */
function wholeBody(exchange: Exchange): boolean {
  const declared = exchange.requestHeaders['content-length'];
  return declared === undefined || exchange.requestHeaders['transfer-encoding'] !== undefined || Number(declared) === exchange.bytesIn;
}

function onResponse(this: ClientRequest, appRes: IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange.upstream !== this || exchange.phase !== WAITING) {
    appRes.resume();
    return;
  }
  // the app answers before the whole body reached it (an Expect refused, an early error): this
  // connection is not reused, whatever the app makes of the rest of the body
  if (exchange.requestHasBody && !this.writableEnded) this.shouldKeepAlive = false;
  // a 101 that node:http did not take for a switch (no Upgrade field, which RFC 9110 §15.2.2
  // requires, or no `upgrade` in Connection, §7.8): relayed, the caller read "Switching
  // Protocols" on a connection that then closed, recorded as a success (review of tunnels, M3).
  // To a request that asked for no upgrade (Expect, OPTIONS *) it is one nobody asked for.
  if (appRes.statusCode === 101) {
    if (exchange instanceof Http1Exchange && exchange.upgradeHead !== undefined) exchange.fail('bad_gateway', `the app answered 101 Switching Protocols ${switchFieldsMissing(appRes.headers)}`);
    else failUnasked(exchange);
    appRes.resume();
    return;
  }
  const codingProblem = responseCodingProblem(appRes.headers['transfer-encoding']);
  if (codingProblem !== undefined) {
    // fail() destroys this request, and the connection with the coded body still on it
    exchange.fail('bad_gateway', codingProblem);
    appRes.resume();
    return;
  }
  const headers = forwardableHeaders(appRes.headers);
  // `Trailer` is listed as hop-by-hop, but it announces trailers the caller should expect
  if (appRes.headers.trailer !== undefined) headers.trailer = appRes.headers.trailer;
  bindExchange(appRes, exchange);
  appRes.on('close', onAppResponseClose); // on(): once() wraps each listener in a closure
  // HTTP/1.1 carries trailers only after a chunked body
  const mayHaveTrailers = appRes.headers['transfer-encoding'] !== undefined;
  if (!exchange.respond(appRes.statusCode ?? 502, headers, false, appRes.statusMessage, mayHaveTrailers)) {
    appRes.resume();
    return;
  }
  appRes.on('end', onAppResponseEnd);
  relayBody(appRes, exchange);
}

function onAppResponseEnd(this: IncomingMessage): void {
  exchangeOf(this).finish(this.rawTrailers.length > 0 ? forwardableHeaders(this.trailers) : undefined);
}

function onAppResponseClose(this: IncomingMessage): void {
  // the app's connection ended before the whole body arrived
  if (!this.complete) exchangeOf(this).broken();
}

function onRequestError(this: ClientRequest, err: Error): void {
  const exchange = exchangeOf(this);
  if (exchange.upstream !== this) return; // a superseded attempt
  if (exchange.phase === WAITING) {
    const app = exchange.forwarder as NodeHttp1App;
    // a pooled socket the app had closed: most likely nothing reached the app, but the reset
    // may also have come after the app read the request, so only a request that is safe to
    // repeat (and has no body to replay) is sent once more
    if (this.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET' && mayResendAfterBreak(exchange)) {
      app.send(exchange);
      return;
    }
    failOnApp(exchange, err, app.toldAddress);
  } else if (exchange.phase === STREAMING) {
    exchange.broken();
  }
}

/** The request to the app is over (answered, failed, cut): its caller's share has room again; a retry's superseded request is not. */
function onRequestClose(this: ClientRequest): void {
  const exchange = exchangeOf(this);
  if (exchange.upstream === this) (exchange.forwarder as NodeHttp1App).turns.leave(exchange);
}

function onContinue(this: ClientRequest): void {
  exchangeOf(this).continue();
}

function onUpgrade(this: ClientRequest, appRes: IncomingMessage, appSocket: Socket, appHead: Buffer): void {
  const exchange = exchangeOf<Http1Exchange>(this);
  const stray = unofferedProtocol(exchange.req.headers.upgrade, appRes.headers.upgrade);
  if (stray !== undefined) {
    appSocket.destroy();
    exchange.fail('bad_gateway', `the app answered 101 switching to ${clip(stray, 64)}, which the request did not offer (Upgrade: ${clip(String(exchange.req.headers.upgrade), 64)}; RFC 9110 section 7.8)`);
    return;
  }
  exchange.tunnel(appRes.statusMessage, appRes.rawHeaders, appSocket, appHead);
}

/** The app switched protocols on a request that asked for no upgrade: 502, never a tunnel. */
function onUnaskedUpgrade(this: ClientRequest, _appRes: IncomingMessage, appSocket: Socket): void {
  appSocket.destroy();
  const exchange = exchangeOf(this);
  if (exchange.upstream !== this || exchange.phase !== WAITING) return;
  failUnasked(exchange);
}

/** A 101 to a request that asked for no upgrade, in the own client's words (app-errors.ts): one message whichever client carried the request. */
function failUnasked(exchange: Exchange): void {
  const failure = classifyAppError(appClientError(APP_CLIENT_ERRORS.unaskedUpgrade, 'a 101 to a request that asked for no upgrade'));
  exchange.fail(failure.code, failure.message);
}

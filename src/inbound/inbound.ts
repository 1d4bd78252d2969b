// The inbound side, assembled: TLS listener → verified caller → HTTP/1.1 or HTTP/2 server
// (by ALPN) → authorization → rate limit → OpenAPI check (schema-check.ts, when a spec is
// configured) → forwarder to the local app. Also listen, drain and close, and the replaceable
// policies (live reload swaps each in one assignment).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { DEFAULT_INBOUND_LIMITS, DEFAULT_INBOUND_MAX_SESSION_AGE_MS, type AuthorizeRule, type InboundConfig, type InboundRateLimit } from '../config/traffic-config.js';
import { MeshcarError } from '../errors.js';
import { announcesBody } from '../http/body-framing.js';
import { dispatchTlsSocket } from '../http/protocol-dispatch.js';
import { H2Connection, type H2Limits, type H2Stream, type IncomingHeaders } from '../h2/index.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { NO_OBSERVER, type TrafficObserver } from '../metrics/traffic.js';
import { H2cApp } from './app-h2c.js';
import { Http1App } from './app-http1.js';
import { NodeHttp1App } from './app-http1-node.js';
import { AuthorizationPolicy } from './authorization.js';
import { Caller, CallerCache } from './caller.js';
import { ConnectionLifetime } from './connection-lifetime.js';
import { ConnectionTracker } from './connections.js';
import { rawErrorResponse } from '../http/status.js';
import { bindExchange, DONE, onRequestData, type Exchange, type ExchangeContext } from './exchange.js';
import type { AppForwarder } from './forwarder.js';
import { Http1Exchange } from './http1-exchange.js';
import { Http2Exchange } from './http2-exchange.js';
import { InboundRateLimiter } from './rate-limit.js';
import { screenRequest } from './schema-check.js';
import type { SchemaGuard } from '../schema/guard.js';
import { isAcceptablePath } from './request-target.js';
import { attachGuard, guardOf, ResetGuard } from './reset-guard.js';
import { h2SessionObserver } from '../http/h2-session-observer.js';
import { createTlsListener } from './tls-listener.js';
import { headDeadlineMs, InboundTimeouts, type InboundTimeoutsConfig } from './timeouts.js';

export interface InboundLimits {
  /** Request head size limit in bytes (HTTP/1.1 → 431; HTTP/2 → SETTINGS_MAX_HEADER_LIST_SIZE). Default: config inbound.limits.maxHeaderListSize (16 KiB). */
  readonly maxHeaderBytes?: number;
  /** Concurrent streams per HTTP/2 connection. Default: config inbound.limits.maxConcurrentStreams (250). */
  readonly maxConcurrentStreams?: number;
  /** Streams an HTTP/2 caller may reset per 10 s (while resets outnumber completed streams) before GOAWAY. Default: config inbound.limits.maxResetsPer10s (200). */
  readonly maxResetsPer10s?: number;
  /** Age at which an HTTP/2 session gets GOAWAY (±10%; streams in flight finish). Default: config inbound.limits.maxSessionAge (10 min). */
  readonly maxSessionAgeMs?: number;
  /** Time to complete the TLS handshake. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Time to receive a complete HTTP/1.1 request head. Default 20 s. */
  readonly headersTimeoutMs?: number;
  /** Idle time between HTTP/1.1 keep-alive requests. Default 60 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Sockets to an HTTP/1.1 app. Default 256. */
  readonly maxAppSockets?: number;
}

export interface InboundOptions {
  readonly config: InboundConfig;
  readonly identity: WorkloadIdentity;
  readonly trustDomain: string;
  /** Our own SPIFFE ID, for x-forwarded-client-cert `By=`. Default: the identity's. */
  readonly ownSpiffeId?: string;
  readonly logger: Logger;
  readonly observer?: TrafficObserver;
  readonly limits?: InboundLimits;
  /** HTTP/2 from callers: Node's core http2 server (`node`, default) or meshcar's own codec in src/h2 (`meshcar`). */
  readonly codec?: 'meshcar' | 'node';
  /** The OpenAPI spec requests are held against (inbound.openapi), loaded by the caller. */
  readonly schema?: SchemaGuard;
}

export interface Inbound {
  /** Binds the listener (port 0: any free port) and resolves with the bound address. */
  listen(): Promise<HostPort>;
  /**
   * Stops accepting, lets requests in flight finish (HTTP/2: GOAWAY; HTTP/1.1: `Connection:
   * close` on the remaining responses) for up to `timeoutMs`, then destroys what is left.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Stops at once: the listener, every connection, the pools toward the app. */
  close(): Promise<void>;
  /** Replaces the authorization rules (undefined: any identity of the trust domain). */
  setAuthorization(rules: readonly AuthorizeRule[] | undefined): void;
  /** Replaces the rate limits (undefined: none); the buckets start full. */
  setRateLimit(rateLimit: InboundRateLimit | undefined): void;
  /**
   * Replaces the timeouts (response head, idle, per-route) for the requests that arrive from
   * now on; requests in flight keep theirs. Throws, changing nothing, on a non-positive value.
   */
  setTimeouts(config: InboundTimeoutsConfig): void;
  /** Replaces the OpenAPI spec and mode (undefined: no checks) for the requests that arrive from now on. */
  setSchema(guard: SchemaGuard | undefined): void;
  readonly address: HostPort | undefined;
  /** Requests (and WebSocket tunnels) in flight. */
  readonly inFlight: number;
  /** Verified connections open. */
  readonly connections: number;
  readonly draining: boolean;
}

/**
 * GOAWAY ENHANCE_YOUR_CALM, no new streams, and the connection destroyed a second later at
 * most. (session.destroy(err, code) alone was seen to close the socket without the peer ever
 * learning why, with its frames still queued.)
 */
function closeAbusive(session: ServerHttp2Session): void {
  if (session.destroyed) return;
  session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  session.close();
  setTimeout(destroySession, ABUSIVE_SESSION_GRACE_MS, session).unref();
}

const ABUSIVE_SESSION_GRACE_MS = 1_000;

function destroySession(session: ServerHttp2Session): void {
  if (!session.destroyed) session.destroy();
}

export function createInbound(options: InboundOptions): Inbound {
  return new InboundListener(options);
}

const kCaller = Symbol('meshcar.inbound.caller');
const kLifetime = Symbol('meshcar.inbound.lifetime');

interface WithCaller {
  [kCaller]?: Caller;
  [kLifetime]?: ConnectionLifetime;
}

class InboundListener implements Inbound, ExchangeContext {
  readonly tracker = new ConnectionTracker();
  readonly observer: TrafficObserver;
  private policy: AuthorizationPolicy;
  /** undefined: no rate limit configured. */
  private rateLimiter: InboundRateLimiter | undefined;
  private timeouts: InboundTimeouts;
  /** undefined: no OpenAPI spec configured; requests skip the check altogether. */
  private schema: SchemaGuard | undefined;
  private readonly maxResetsPer10s: number;
  private readonly maxSessionAgeMs: number;
  private readonly callers: CallerCache;
  private readonly logger: Logger;
  private readonly config: InboundConfig;
  private readonly tlsServer: tls.Server;
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  /** http2.codec: which HTTP/2 implementation takes h2 connections (node: `http2` above). */
  private readonly codec: 'meshcar' | 'node';
  /** meshcar codec: the limits of every caller connection (its own reset budget included). */
  private readonly h2Limits: Partial<H2Limits>;
  private readonly app: AppForwarder;
  /** WebSocket and other Upgrade requests always go to the app over HTTP/1.1. */
  private readonly upgrades: NodeHttp1App;
  private bound: HostPort | undefined;
  private closed = false;
  private drainRun: Promise<void> | undefined;

  constructor(options: InboundOptions) {
    const { config, identity, logger } = options;
    const limits = options.limits ?? {};
    const configured = config.limits ?? DEFAULT_INBOUND_LIMITS;
    const maxHeaderBytes = limits.maxHeaderBytes ?? configured.maxHeaderListSize;
    this.maxResetsPer10s = limits.maxResetsPer10s ?? configured.maxResetsPer10s;
    this.maxSessionAgeMs = limits.maxSessionAgeMs ?? configured.maxSessionAgeMs ?? DEFAULT_INBOUND_MAX_SESSION_AGE_MS;
    this.rateLimiter = InboundRateLimiter.create(config.rateLimit);
    this.timeouts = new InboundTimeouts(config);
    this.schema = options.schema;
    this.config = config;
    this.logger = logger;
    this.observer = options.observer ?? NO_OBSERVER;
    this.policy = AuthorizationPolicy.compile(config.authorize);
    this.callers = new CallerCache(options.ownSpiffeId ?? identity.spiffeId);

    const appAddress = { host: config.app.host, port: config.app.port };
    this.app =
      config.app.protocol === 'h2c'
        ? new H2cApp(appAddress, logger)
        : new Http1App(appAddress, limits.maxAppSockets ? { maxSockets: limits.maxAppSockets } : {});
    // Upgrade requests get a connection of their own that is never pooled: after an answer
    // other than 101 the state of that connection is the app's guess, not something to reuse
    // for another caller's request.
    this.upgrades = new NodeHttp1App(appAddress, { keepAlive: false });

    const headersTimeout = limits.headersTimeoutMs ?? 20_000;
    this.http1 = http.createServer({
      maxHeaderSize: maxHeaderBytes,
      // a caller that trickles its request head (slowloris) is cut off: 408
      headersTimeout,
      // bodies may stream for as long as the two ends like (uploads, long polls)
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs ?? 60_000,
      // how often Node checks headersTimeout: a quarter of it, between 250 ms and 5 s
      connectionsCheckingInterval: Math.min(5_000, Math.max(250, headersTimeout / 4)),
      noDelay: true,
    });
    this.http1.on('request', (req: IncomingMessage, res: ServerResponse) => this.onHttp1Request(req, res, false));
    // an `Expect: 100-continue` request: the app, not the sidecar, decides whether to continue
    this.http1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onHttp1Request(req, res, true));
    this.http1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    // This server never listens itself: the TLS listener hands it sockets. Node starts the
    // headersTimeout checks and connection tracking on 'listening', so announce it once.
    this.http1.emit('listening');

    this.http2 = http2.createServer({
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams ?? configured.maxConcurrentStreams, maxHeaderListSize: maxHeaderBytes },
      maxHeaderListPairs: 256,
    });
    this.http2.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.http2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => this.onStream(stream, headers, flags));
    this.codec = options.codec ?? 'node';
    this.h2Limits = {
      maxConcurrentStreams: limits.maxConcurrentStreams ?? configured.maxConcurrentStreams,
      maxHeaderListSize: maxHeaderBytes,
      maxHeaderFields: 256,
      // the codec's budget replaces the ResetGuard: same limit, same 10 s window
      maxResetsPerWindow: this.maxResetsPer10s,
    };

    this.tlsServer = createTlsListener({
      identity,
      trustDomain: options.trustDomain,
      logger,
      observer: this.observer,
      handshakeTimeoutMs: limits.handshakeTimeoutMs ?? 10_000,
      onCaller: (socket, id, certificate, expiresAtMs) => {
        if (this.tracker.draining) {
          socket.destroy();
          return;
        }
        const caller = this.callers.callerFor(id, certificate);
        (socket as WithCaller)[kCaller] = caller;
        (socket as WithCaller)[kLifetime] = this.lifetimeOf(socket, caller, expiresAtMs);
        this.tracker.add(socket, socket.alpnProtocol !== 'h2');
        if (this.codec === 'meshcar' && socket.alpnProtocol === 'h2') this.onMeshcarConnection(socket, caller);
        else dispatchTlsSocket(socket, { http1: this.http1, http2: this.http2 });
      },
    });
  }

  get address(): HostPort | undefined {
    return this.bound;
  }

  get inFlight(): number {
    return this.tracker.inFlight;
  }

  get connections(): number {
    return this.tracker.connections;
  }

  get draining(): boolean {
    return this.tracker.draining;
  }

  setAuthorization(rules: readonly AuthorizeRule[] | undefined): void {
    // compiled before the swap: a bad rule set would throw here and leave the old one in force
    this.policy = AuthorizationPolicy.compile(rules);
  }

  setRateLimit(rateLimit: InboundRateLimit | undefined): void {
    this.rateLimiter = InboundRateLimiter.create(rateLimit);
  }

  setTimeouts(config: InboundTimeoutsConfig): void {
    // compiled before the swap: a bad value throws here and leaves the old timeouts in force
    this.timeouts = new InboundTimeouts(config);
  }

  setSchema(guard: SchemaGuard | undefined): void {
    this.schema = guard;
  }

  listen(): Promise<HostPort> {
    const { host, port } = this.config.listen;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new MeshcarError('config_invalid', `inbound cannot listen on ${formatHostPort({ host, port })}: ${err.message}`, { cause: err }));
      this.tlsServer.once('error', onError);
      this.tlsServer.listen(port, host, () => {
        this.tlsServer.off('error', onError);
        // after binding, a server error (e.g. EMFILE on accept) is logged, never thrown
        this.tlsServer.on('error', (err) => this.logger.error({ err: err.message }, 'inbound listener error'));
        const address = this.tlsServer.address() as AddressInfo;
        this.bound = { host: address.address, port: address.port };
        this.logger.info({ address: formatHostPort(this.bound), app: `${this.config.app.protocol}://${formatHostPort(this.config.app)}` }, 'inbound listening');
        resolve(this.bound);
      });
    });
  }

  drain(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    // a second call joins the first drain rather than starting another clock
    this.drainRun ??= (async () => {
      this.stopListening();
      this.logger.info({ inFlight: this.tracker.inFlight, connections: this.tracker.connections, timeoutMs }, 'inbound draining');
      await this.tracker.drain(timeoutMs);
      await this.close();
    })();
    return this.drainRun;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    this.tracker.destroyAll();
    this.app.close();
    this.upgrades.close();
    this.http1.close(); // stops its headersTimeout checks
    this.http2.close();
  }

  private stopListening(): void {
    this.tracker.draining = true;
    if (this.tlsServer.listening) this.tlsServer.close();
  }

  private onHttp1Request(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const caller = (req.socket as WithCaller)[kCaller] as Caller;
    this.handle(new Http1Exchange(req, res, caller, this, expectsContinue), this.app);
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const caller = (socket as WithCaller)[kCaller] as Caller;
    const exchange = Http1Exchange.forUpgrade(req, socket, head, caller, this);
    // h2c over TLS does not exist (RFC 9113), and a tunnel would let later requests skip authorization
    if (String(req.headers.upgrade).toLowerCase() === 'h2c') {
      exchange.fail('bad_request', 'Upgrade: h2c is not supported; use ALPN h2');
      return;
    }
    // bytes after an Upgrade head belong to the new protocol; a body announced with it would
    // have to be framed twice over, and an app that answers without reading it desyncs
    if (announcesBody(req.headers)) {
      exchange.fail('bad_request', 'an Upgrade request cannot carry a body (Content-Length or Transfer-Encoding)');
      return;
    }
    this.handle(exchange, this.upgrades);
  }

  private onSession(session: ServerHttp2Session): void {
    // the proxy session.socket reaches the TLS socket's properties; read the caller once
    (session as WithCaller)[kCaller] = (session.socket as WithCaller)[kCaller];
    session.on('error', (err) => this.logger.debug({ err: err.message }, 'inbound HTTP/2 session error'));
    attachGuard(session, new ResetGuard(this.maxResetsPer10s, (_guard, resets, completed) => this.onRapidReset(session, resets, completed)));
    (session.socket as WithCaller)[kLifetime]?.limitSession(session, this.maxSessionAgeMs);
    this.tracker.addSession(session);
  }

  /** http2.codec meshcar: the caller's h2 connection on meshcar's own codec (the node codec's onSession + onStream). */
  private onMeshcarConnection(socket: TLSSocket, caller: Caller): void {
    const observer = h2SessionObserver('inbound', this.observer, this.logger, caller.id.uri, socket.remoteAddress);
    const conn = new H2Connection(socket, { role: 'server', limits: this.h2Limits, observer });
    (conn as WithCaller)[kCaller] = caller;
    conn.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'inbound HTTP/2 session error'));
    conn.on('stream', (stream: H2Stream, headers: IncomingHeaders, endStream: boolean) => {
      // no ResetGuard: the codec counts resets itself (see src/http/h2-session-observer.ts)
      this.handle(new Http2Exchange(stream, headers as IncomingHttpHeaders, !endStream, caller, this, undefined), this.app);
    });
    (socket as WithCaller)[kLifetime]?.limitSession(conn, this.maxSessionAgeMs);
    this.tracker.addSession(conn);
  }

  /** The connection's one timer: closed when the caller's certificate path expires; HTTP/2 also retired at its maximum age. */
  private lifetimeOf(socket: TLSSocket, caller: Caller, expiresAtMs: number): ConnectionLifetime {
    return new ConnectionLifetime(socket, expiresAtMs, {
      onExpired: () =>
        this.logger.info({ peer: caller.id.uri, remote: socket.remoteAddress, notAfter: new Date(expiresAtMs).toISOString() }, "inbound connection closed: the caller's certificate expired"),
      onRetired: () => this.logger.debug({ peer: caller.id.uri, remote: socket.remoteAddress, maxSessionAgeMs: this.maxSessionAgeMs }, 'inbound HTTP/2 session reached its maximum age: GOAWAY'),
    });
  }

  /** The caller keeps resetting the streams it opens (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM, then close. */
  private onRapidReset(session: ServerHttp2Session, resets: number, completed: number): void {
    // streams aborted because the session is going anyway (connection lost, drain) are no abuse
    if (session.destroyed || session.closed) return;
    const caller = (session as WithCaller)[kCaller];
    this.logger.warn(
      { peer: caller?.id.uri, remote: session.socket?.remoteAddress, resets, completed, windowSeconds: 10 },
      'inbound HTTP/2 session closed: the caller resets streams faster than allowed (rapid reset)',
    );
    this.observer.sessionRejected?.('inbound', 'rapid_reset');
    // out of nghttp2's receive callback, which this runs inside
    setImmediate(closeAbusive, session);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    const caller = (stream.session as WithCaller | undefined)?.[kCaller];
    if (caller === undefined) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const requestHasBody = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0;
    this.handle(new Http2Exchange(stream, headers, requestHasBody, caller, this, guardOf(stream.session)), this.app);
  }

  /** The per-request policy: a plain path, an allowed caller, then the app. */
  private handle(exchange: Exchange, forwarder: AppForwarder): void {
    if (!isAcceptablePath(exchange.path)) {
      exchange.fail('bad_request', 'the request path must be a plain absolute path: no dot segments (also with ;params or encoded), no double-encoded dots or slashes, no empty first segment');
      return;
    }
    if (!exchange.caller.grantUnder(this.policy).allows(exchange.method, exchange.path)) {
      exchange.fail('forbidden', `${exchange.caller.id.uri} is not allowed to ${exchange.method} ${exchange.path}`);
      return;
    }
    if (this.rateLimiter !== undefined) {
      const refusal = this.rateLimiter.take(exchange.caller);
      if (refusal !== undefined) {
        const whose = refusal.scope === 'identity' ? `${exchange.caller.id.uri} sends more requests than its rate limit` : 'this service receives more requests than its total rate limit';
        exchange.fail('rate_limited', `${whose}; retry later`, refusal.retryAfterSeconds);
        return;
      }
    }
    const route = this.timeouts.forPath(exchange.path);
    // the caller's own deadline (grpc-timeout, x-request-timeout) may shorten the wait, never lengthen it
    // (started before the schema check: a body read for validation is within the same deadline)
    exchange.startTimers(headDeadlineMs(route.timeoutMs, exchange.requestHeaders), route.idleTimeoutMs);
    // WebSocket upgrades (their own forwarder) pass unchecked: a tunnel is not an API call
    if (this.schema !== undefined && forwarder === this.app) screenRequest(exchange, this.schema, this.toApp);
    else toApp(exchange, forwarder);
  }

  /** After the schema check: on to the app (one function for every request, no closure each). */
  private readonly toApp = (exchange: Exchange) => toApp(exchange, this.app);

  /** A request Node could not parse (or that outgrew the header limit): answer and close. */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // Node's own guard: write only if nothing of a response is on this connection yet
    const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (inProgress && inProgress.headersSent)) {
      socket.destroy();
      return;
    }
    let response: string;
    if (err.code === 'HPE_HEADER_OVERFLOW') response = rawErrorResponse({ status: 431 });
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') response = rawErrorResponse({ status: 408 });
    else response = rawErrorResponse(new MeshcarError('bad_request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`));
    this.logger.debug({ code: err.code, remote: socket.remoteAddress }, 'inbound request refused by the HTTP parser');
    socket.end(response);
    socket.destroySoon();
  }
}

/** The request goes to the app (the forwarder builds the head it needs: see appHeadersOf). */
function toApp(exchange: Exchange, forwarder: AppForwarder): void {
  forwarder.forward(exchange);
  if (exchange.requestHasBody && exchange.phase !== DONE) {
    // added after the forwarder's pipe(), so it does not change the body's flow
    bindExchange(exchange.requestBody, exchange);
    exchange.requestBody.on('data', onRequestData);
  }
}

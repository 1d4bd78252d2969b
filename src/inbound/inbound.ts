// The inbound side, assembled: the TLS listener and the servers behind it (HTTP/1.1 or HTTP/2
// by ALPN, Node's codec or meshcar's), their wiring at construction, listen, drain and close,
// and the replaceable policies (live reload swaps each in one assignment). What happens on
// each connection is in caller-connections.ts (HTTP/2 sessions, their lifetime, rapid reset);
// what happens to each request (plain path → authorization → rate limit → OpenAPI check →
// forwarder to the local app) is in request-dispatch.ts: plain functions of the listener, so
// no object is made per connection or per request for them. The Inbound interface it
// implements, its options and limits are in inbound-contract.ts; Node's HTTP/1.1 server and
// the wiring of its events in http1-server.ts.

import type http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { DEFAULT_HTTP2 } from '../config/http2-config.js';
import { DEFAULT_INBOUND_LIMITS, DEFAULT_INBOUND_MAX_SESSION_AGE_MS, type InboundLimitsConfig, type AuthorizeRule, type InboundConfig, type InboundRateLimit } from '../config/inbound-config.js';
import { listenFailed, MeshcarError } from '../errors.js';
import { errorAnswerList } from '../http/status.js';
import { dispatchTlsSocket } from '../http/protocol-dispatch.js';
import { logListenerErrors } from '../http/listener-errors.js';
import type { H2Limits, HeadersTooLargeAnswer } from '../h2/index.js';
import { NO_OBSERVER, type TrafficObserver } from '../metrics/traffic.js';
import { H2cApp } from './app-h2c.js';
import type { H2cPoolOptions } from './h2c-lease.js';
import { Http1App } from './app-http1.js';
import { NodeHttp1App } from './app-http1-node.js';
import { H2C_UPGRADE_REFUSAL } from './h2c-upgrade-refusal.js';
import { AuthorizationPolicy } from './authorization.js';
import { CallerCache } from './caller.js';
import { cutCallersOutsideTrust, kLifetime, lifetimeOf, onMeshcarConnection, onSession, type WithLifetime } from './caller-connections.js';
import { ConnectionTracker } from './connections.js';
import { ReceiveBudgets } from './receive-budgets.js';
import { LogPerKey } from '../log-per-key.js';
import { ConnectionCaps } from './connection-caps.js';
import { DEFAULT_SESSION_PROBE, type SessionProbeTimes } from './node-session-probe.js';
import type { Exchange } from './exchange.js';
import type { ExchangeContext } from './exchange-links.js';
import type { AppForwarder } from './forwarder.js';
import { InboundRateLimiter } from './rate-limit.js';
import { kCaller, onStream, toApp, type WithCaller } from './request-dispatch.js';
import { createHttp1Server } from './http1-server.js';
import type { SchemaGuard } from '../schema/guard.js';
import { createTlsListener } from './tls-listener.js';
import { InboundTimeouts, type InboundTimeoutsConfig } from './timeouts.js';
import type { Inbound, InboundLimits, InboundOptions } from './inbound-contract.js';

function h2cPoolOptions(limits: InboundLimits, configured: InboundLimitsConfig): H2cPoolOptions {
  return {
    ...(limits.appPingTimeoutMs === undefined ? {} : { probeMs: limits.appPingTimeoutMs }),
    ...(limits.appColdStreams === undefined ? {} : { coldStreams: limits.appColdStreams }),
    ...(limits.appFirstSettingsMs === undefined ? {} : { firstSettingsMs: limits.appFirstSettingsMs }),
    ...(limits.appLearnedLimitMs === undefined ? {} : { learnedMs: limits.appLearnedLimitMs }),
    maxWaiting: limits.appMaxWaiting ?? configured.maxAppWaiting,
  };
}

export function createInbound(options: InboundOptions): Inbound {
  return new InboundListener(options);
}

/** Not exported from the package (createInbound gives the Inbound interface); exported for the functions of caller-connections.ts and request-dispatch.ts. */
export class InboundListener implements Inbound, ExchangeContext {
  readonly tracker = new ConnectionTracker();
  readonly observer: TrafficObserver;
  // What the per-connection and per-request functions read (not for users of Inbound).
  policy: AuthorizationPolicy;
  /** undefined: no rate limit configured. */
  rateLimiter: InboundRateLimiter | undefined;
  timeouts: InboundTimeouts;
  /** undefined: no OpenAPI spec configured; requests skip the check altogether. */
  schema: SchemaGuard | undefined;
  readonly maxResetsPer10s: number;
  readonly maxSessionAgeMs: number;
  /** http2.codec node: when a silent caller session is asked for a PING, and how long it has to answer (node-session-probe.ts). */
  readonly sessionProbe: SessionProbeTimes;
  readonly logger: Logger;
  /** meshcar codec: the limits of every caller connection (its own reset budget included). */
  readonly h2Limits: Partial<H2Limits>;
  /** HTTP/1.1 requests in flight on one connection beyond which it is closed (request-dispatch.ts). */
  readonly maxPipelined: number;
  /** Warn lines about connections closed for pipelining, one per address per window. */
  readonly pipelineCuts = new LogPerKey();
  /** Warn lines about HTTP/2 sessions closed for the caller's abuse, one per caller identity per window. */
  readonly abuseCloses = new LogPerKey();
  /** Warn lines about answers the idle timeout cut after their head, one per config key per window (stream-cut-log.ts). */
  readonly streamCuts = new LogPerKey();
  /** meshcar codec: request body bytes held per caller identity, all its connections together. */
  readonly receiveBudgets: ReceiveBudgets;
  /** meshcar codec: the 431 to a request head over h2Limits, the JSON error answer as every other. */
  readonly headersTooLargeAnswer: HeadersTooLargeAnswer;
  readonly app: AppForwarder;
  /** WebSocket and other Upgrade requests go to the app over HTTP/1.1 (refused for an h2c app). */
  readonly upgrades: AppForwarder;
  /** After the schema check: on to the app (one function for every request, no closure each). */
  readonly toApp = (exchange: Exchange) => toApp(exchange, this.app);
  private readonly callers: CallerCache;
  private readonly config: InboundConfig;
  private readonly tlsServer: tls.Server;
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  /** http2.codec: which HTTP/2 implementation takes h2 connections (node: `http2` above). */
  private readonly codec: 'meshcar' | 'node';
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
    this.sessionProbe = { idleMs: limits.sessionProbeIdleMs ?? DEFAULT_SESSION_PROBE.idleMs, timeoutMs: limits.sessionProbeTimeoutMs ?? DEFAULT_SESSION_PROBE.timeoutMs };
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
        ? new H2cApp(appAddress, logger, h2cPoolOptions(limits, configured), this.observer)
        : new Http1App(appAddress, { maxSockets: limits.maxAppSockets ?? configured.maxAppConnections, maxWaiting: limits.appMaxWaiting ?? configured.maxAppWaiting, ...(options.appClient ? { client: options.appClient } : {}) });
    // Upgrade requests get a connection of their own that is never pooled: after an answer
    // other than 101 the state of that connection is the app's guess, not something to reuse
    // for another caller's request.
    // An h2c app has no Upgrade to take them: refused (h2c-upgrade-refusal.ts).
    this.upgrades = config.app.protocol === 'h2c' ? H2C_UPGRADE_REFUSAL : new NodeHttp1App(appAddress, { keepAlive: false, maxWaiting: limits.appMaxWaiting ?? configured.maxAppWaiting });

    this.http1 = createHttp1Server(this, maxHeaderBytes, limits.headersTimeoutMs ?? 20_000, limits.keepAliveTimeoutMs ?? 60_000);

    this.http2 = http2.createServer({
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams ?? configured.maxConcurrentStreams, maxHeaderListSize: maxHeaderBytes },
      maxHeaderListPairs: 256,
    });
    this.http2.on('session', (session: ServerHttp2Session) => onSession(this, session));
    this.http2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => onStream(this, stream, headers, flags, rawHeaders));
    this.codec = options.codec ?? DEFAULT_HTTP2.codec;
    this.h2Limits = {
      maxConcurrentStreams: limits.maxConcurrentStreams ?? configured.maxConcurrentStreams,
      maxHeaderListSize: maxHeaderBytes,
      maxHeaderFields: 256,
      // the codec's budget replaces the ResetGuard: same limit, same 10 s window
      maxResetsPerWindow: this.maxResetsPer10s,
    };
    this.maxPipelined = limits.maxPipelined ?? configured.maxPipelined;
    this.receiveBudgets = new ReceiveBudgets(limits.maxBufferedPerCaller ?? configured.maxBufferedPerCaller);
    // Node's codec resets such a stream (ENHANCE_YOUR_CALM): a caller's sidecar says 431 itself
    this.headersTooLargeAnswer = errorAnswerList(
      new MeshcarError('headers_too_large', `the request head is larger than this sidecar takes (over ${maxHeaderBytes} bytes or ${this.h2Limits.maxHeaderFields} fields: inbound.limits.maxHeaderListSize)`),
    );

    const caps = new ConnectionCaps(
      {
        maxHandshakesPerAddress: limits.maxHandshakesPerAddress ?? configured.maxHandshakesPerAddress,
        maxHandshakes: limits.maxHandshakes ?? configured.maxHandshakes,
        maxConnectionsPerCaller: limits.maxConnectionsPerCaller ?? configured.maxConnectionsPerCaller,
      },
      logger,
      this.observer,
    );
    this.tlsServer = createTlsListener({
      identity,
      trustDomain: options.trustDomain,
      logger,
      observer: this.observer,
      handshakeTimeoutMs: limits.handshakeTimeoutMs ?? 10_000,
      sessionResumption: config.sessionResumption === true,
      onTrustNarrowed: (roots) => cutCallersOutsideTrust(this, roots, identity.current().chainPem),
      onHandshakeFailed: (address, bytes, costly) => caps.handshakeFailed(address, bytes, costly),
      onCaller: (socket, id, certificate, expiresAtMs) => {
        if (this.tracker.draining || !caps.admitCaller(socket, id.uri)) {
          socket.destroy();
          return;
        }
        const caller = this.callers.callerFor(id, certificate);
        (socket as WithCaller)[kCaller] = caller;
        (socket as WithLifetime)[kLifetime] = lifetimeOf(this, socket, caller, expiresAtMs);
        this.tracker.add(socket, socket.alpnProtocol !== 'h2');
        if (this.codec === 'meshcar' && socket.alpnProtocol === 'h2') onMeshcarConnection(this, socket, caller);
        else dispatchTlsSocket(socket, { http1: this.http1, http2: this.http2 });
      },
    });
    caps.watchHandshakes(this.tlsServer);
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
    this.rateLimiter = InboundRateLimiter.create(rateLimit, this.rateLimiter);
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
      const onError = (err: Error) => reject(listenFailed(`inbound cannot listen on ${formatHostPort({ host, port })} (inbound.listen)`, err));
      this.tlsServer.once('error', onError);
      this.tlsServer.listen(port, host, () => {
        this.tlsServer.off('error', onError);
        // after binding, a server error is logged, never thrown, at most once per code per 10 s
        // (EMFILE on accept is not one: libuv absorbs it, closing that connection unlogged; README "Open files")
        logListenerErrors(this.tlsServer, this.logger, 'inbound');
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
      await this.tracker.drain(timeoutMs, () => this.app.refuseWaiting());
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
}

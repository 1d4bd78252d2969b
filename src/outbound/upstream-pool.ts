// Everything the outbound side keeps per upstream: its endpoints, its HTTP/2 agent and the
// sessions the agent opened (with their lifecycle and the observer's gauges), and the one way
// requests get a stream: check the circuit breaker; pick an endpoint (power of two choices over
// peak-EWMA load, see balancer.ts); use an open session there with a free
// stream slot at once, else ask the agent (which opens a session, or queues for one); and if
// the endpoint cannot be reached (nothing sent yet) try the next one. With `codec: 'meshcar'`
// the sessions are src/h2 connections kept by H2SessionPool (h2-session-pool.ts) instead of
// http2-wrapper's; everything above the session (balancing, failover, circuit, counting) is shared.

import type { ClientHttp2Session, ClientSessionRequestOptions, IncomingHttpHeaders, IncomingHttpStatusHeader, OutgoingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/traffic-config.js';
import { MeshcarError, describeError } from '../errors.js';
import { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import { EndpointSet, type LookupAll, type UpstreamEndpoint } from './endpoints.js';
import type { SessionPolicy } from './session-lifecycle.js';
import './async-bind.js'; // cheaper AsyncResource#bind for every session.request()
import type { UpstreamAgent } from './upstream-agent.js';
import { connectMutualTls, endpointOfSocket } from './mutual-tls.js';
import { nodeCodec, type NodeCodec } from './node-codec.js';
import { H2SessionPool } from './h2-session-pool.js';
import { adaptH2Stream, type UpstreamStream } from './upstream-stream.js';
import { classifyConnectError, isBadRequestError, isSessionClosingError } from './upstream-errors.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RetryPolicy } from './retry.js';
import { BALANCER_DEFAULTS, CIRCUIT_DEFAULTS, EndpointHealth, OUTLIER_DEFAULTS } from './balancer.js';
import type { CircuitBreakerConfig } from '../config/traffic-config.js';
import { outboundFailure } from '../tls-failures/describe.js';
import { effectiveStatus } from '../http/status.js';

// what the pool notes on each of its streams, read by its shared 'response' and 'close' listeners
const ENDPOINT = Symbol('meshcar.endpoint');
const OPENED = Symbol('meshcar.opened');
const ANSWERED = Symbol('meshcar.answered');
interface TrackedStream extends UpstreamStream {
  [ENDPOINT]?: UpstreamEndpoint;
  [OPENED]?: number;
  [ANSWERED]?: boolean;
}

export interface PoolSettings extends SessionPolicy {
  readonly dnsRefreshMs: number;
  /** How long an endpoint that failed to connect is skipped. */
  readonly endpointBackoffMs: number;
  readonly lookup?: LookupAll;
}

export interface PoolDependencies {
  readonly identity: WorkloadIdentity;
  readonly logger: Logger;
  readonly observer: TrafficObserver;
  readonly settings: PoolSettings;
  /** Which HTTP/2 codec carries the sessions: http2-wrapper + core http2 (default) or src/h2. */
  readonly codec?: 'meshcar' | 'node';
}

export interface OpenedStream {
  readonly stream: UpstreamStream;
  readonly endpoint: UpstreamEndpoint;
}

/** Who asked for a stream: an object with methods, so a request passes no closures (attempt.ts). */
export interface StreamRequester {
  streamOpened(stream: UpstreamStream, endpoint: UpstreamEndpoint): void;
  streamFailed(err: MeshcarError): void;
}

export interface OpenedTunnel {
  readonly socket: TLSSocket;
  readonly endpoint: UpstreamEndpoint;
}

function badRequest(err: unknown): MeshcarError {
  return new MeshcarError('bad_request', `the request cannot be sent upstream: ${describeError(err)}`, { cause: err });
}

/** Tries per request on distinct endpoints, for failures before any byte was sent. */
const MAX_CONNECT_ATTEMPTS = 3;
/** Retries when a session turned out to be closing between the pick and the request. */
const MAX_CLOSING_RETRIES = 2;
const CONNECT_TIMEOUT_CAP_MS = 10_000;

// Fixed for every request of every pool: http2-wrapper copies it when opening a session.
// A 1 MiB stream window (http2-wrapper's default is 32 MiB) keeps a slow app from making us
// hold much of a fast upstream's body: flow control is the backpressure across the hop.
const AGENT_OPTIONS = Object.freeze({ settings: Object.freeze({ enablePush: false, initialWindowSize: 1 << 20 }) });

export class UpstreamPool {
  readonly name: string;
  // timeouts, retries and circuit limits change in place on a live reload (reconfigure())
  timeoutMs: number;
  /** No bytes either way on a stream for this long ends it (504 before the answer). */
  idleTimeoutMs: number;
  retry: RetryPolicy;
  readonly endpoints: EndpointSet;
  /**
   * The sessions when the codec is `node`: http2-wrapper's agent over core http2, made at the
   * first request (node-codec.ts: the outbound loads http2-wrapper before it listens).
   */
  private nodeAgent: UpstreamAgent | undefined;
  /** The node codec's module, once the agent is made (its sessions are managed with it). */
  private nodeKit: NodeCodec | undefined;
  /** The sessions when the codec is `meshcar` (no agent then: nothing of http2-wrapper is made). */
  private readonly own: H2SessionPool | undefined;
  private readonly sessions = new Set<ClientHttp2Session>();
  /** Open sessions per endpoint, oldest first: the fast path's candidates. */
  private readonly byEndpoint = new Map<UpstreamEndpoint, ClientHttp2Session[]>();
  /** Load estimate and outlier ejection of the endpoints. */
  readonly health: EndpointHealth<UpstreamEndpoint>;
  circuit: CircuitBreakerConfig;
  /** The config this pool runs now (what reload compares against). */
  private config: UpstreamConfig;
  /** Streams open toward the upstream (requests in flight). */
  private active = 0;
  /** Requests waiting for a session or a stream slot (the slow path). */
  private pending = 0;
  /** One function for every stream's 'response' and 'close', not a closure per request. */
  private readonly streamResponded: (this: TrackedStream, head: IncomingHttpHeaders & IncomingHttpStatusHeader) => void;
  private readonly streamClosed: (this: TrackedStream) => void;
  private readonly checkServerIdentity: ReturnType<typeof verifyServerSpiffeId>;
  private connectTimeoutMs: number;
  private closed = false;

  constructor(config: UpstreamConfig, private readonly deps: PoolDependencies) {
    this.name = config.name;
    this.config = config;
    this.timeoutMs = config.timeoutMs;
    this.idleTimeoutMs = config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.retry = new RetryPolicy(config.name, config.retries, deps.observer);
    this.connectTimeoutMs = Math.min(config.timeoutMs, CONNECT_TIMEOUT_CAP_MS);
    this.checkServerIdentity = verifyServerSpiffeId(config.identity);
    const settings = deps.settings;
    const decayMs = config.balancer?.decayMs ?? BALANCER_DEFAULTS.decayMs;
    this.circuit = config.circuitBreaker ?? CIRCUIT_DEFAULTS;
    this.endpoints = new EndpointSet(config.endpoints, {
      refreshMs: settings.dnsRefreshMs,
      decayMs,
      logger: deps.logger,
      ...(settings.lookup ? { lookup: settings.lookup } : {}),
    });
    this.own =
      deps.codec === 'meshcar'
        ? new H2SessionPool({
            upstream: config.name,
            identity: deps.identity,
            checkServerIdentity: this.checkServerIdentity,
            connectTimeoutMs: () => this.connectTimeoutMs,
            policy: settings,
            observer: deps.observer,
            logger: deps.logger,
          })
        : undefined;
    const health = new EndpointHealth(config.name, () => this.endpoints.all(), decayMs, config.outlierDetection ?? OUTLIER_DEFAULTS, deps.observer, deps.logger);
    this.health = health;
    const observer = deps.observer;
    const name = config.name;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listeners' own `this` is the stream
    const pool = this;
    this.streamResponded = function (head) {
      const endpoint = this[ENDPOINT];
      if (endpoint === undefined || this[ANSWERED]) return;
      this[ANSWERED] = true;
      // a remote sidecar's own error counts as its status, also when a gRPC caller got it as 200
      health.responded(endpoint, effectiveStatus(Number(head[':status']), head), performance.now() - (this[OPENED] as number));
    };
    this.streamClosed = function () {
      observer.upstreamStreamsChanged(name, -1);
      pool.active -= 1;
      const endpoint = this[ENDPOINT];
      if (endpoint === undefined) return;
      endpoint.outstanding -= 1;
      // closed with no response: a reset, a timeout (cancelled by the forwarder), a dead session
      if (!this[ANSWERED]) health.failedWithPenalty(endpoint, performance.now() - (this[OPENED] as number));
    };
    this.endpoints.on('removed', (endpoint) => this.retire(endpoint));
  }

  /** http2-wrapper's agent (codec `node`), made at the first request that needs a new session. */
  private agent(): UpstreamAgent {
    if (this.nodeAgent) return this.nodeAgent;
    const kit = nodeCodec();
    const agent = new kit.UpstreamAgent({
      identity: this.deps.identity,
      expectedId: this.config.identity,
      connectTimeoutMs: this.connectTimeoutMs,
      endpointFor: (host) => this.endpoints.forOriginHost(host),
    });
    this.nodeKit = kit;
    this.nodeAgent = agent;
    agent.on('session', (session: ClientHttp2Session) => this.adopt(session));
    return agent;
  }

  /** Resolves host-name endpoints for the first time; never rejects. */
  start(): Promise<void> {
    return this.endpoints.start();
  }

  /**
   * A stream toward the upstream, on a pooled session; exactly one callback is called. Fast
   * path: the picked endpoint has a session with a free stream slot, and the stream is made on
   * it at once (through http2-wrapper's own counting shim, so the agent's books stay right),
   * with no promise or queue. Otherwise the agent opens or waits for a session, and endpoints
   * that cannot be reached are skipped. Failures are MeshcarErrors: upstream_unavailable,
   * upstream_identity_mismatch, bad_gateway, bad_request. A retry passes the endpoint that
   * failed as `avoid`: another one is used when there is one.
   */
  openStream(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, requester: StreamRequester, avoid?: UpstreamEndpoint): void {
    if (!this.closed && this.active + this.pending >= this.circuit.maxRequests) return requester.streamFailed(this.circuitOpen(`${this.active + this.pending} requests are in flight (circuitBreaker.maxRequests ${this.circuit.maxRequests})`));
    const now = Date.now();
    const endpoint = this.closed ? undefined : avoid === undefined ? this.endpoints.pick(now) : (this.endpoints.pick(now, avoid) ?? this.endpoints.pick(now));
    if (endpoint) {
      let stream: UpstreamStream | undefined;
      try {
        stream = this.requestNow(endpoint, headers, options);
      } catch (err) {
        if (isBadRequestError(err)) return requester.streamFailed(badRequest(err));
        // the session was closing under us: the slow path finds or makes another
      }
      if (stream) {
        this.countStream(stream, endpoint);
        return requester.streamOpened(stream, endpoint);
      }
    }
    if (!this.closed && this.pending >= this.circuit.maxPending) return requester.streamFailed(this.circuitOpen(`${this.pending} requests are waiting for a stream (circuitBreaker.maxPending ${this.circuit.maxPending})`));
    this.pending += 1;
    this.openSlowly(headers, options, endpoint).then(
      (opened) => {
        this.pending -= 1;
        requester.streamOpened(opened.stream, opened.endpoint);
      },
      (err: MeshcarError) => {
        this.pending -= 1;
        requester.streamFailed(err);
      },
    );
  }

  private circuitOpen(why: string): MeshcarError {
    this.deps.observer.circuitOpened?.(this.name);
    return new MeshcarError('circuit_open', `upstream ${this.name}: ${why}`);
  }

  private async openSlowly(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, first: UpstreamEndpoint | undefined): Promise<OpenedStream> {
    let closingRetries = 0;
    return this.withFailover(first, async (endpoint) => {
      for (;;) {
        try {
          const stream = this.own ? adaptH2Stream(await this.own.request(endpoint, headers, options)) : await this.agent().request(endpoint.origin, AGENT_OPTIONS, headers, options);
          this.countStream(stream, endpoint);
          return { stream, endpoint };
        } catch (err) {
          if (isSessionClosingError(err) && closingRetries++ < MAX_CLOSING_RETRIES) continue;
          if (isBadRequestError(err)) throw badRequest(err);
          throw err;
        }
      }
    });
  }

  /** A stream on an open session of this endpoint with a free slot, or undefined (no promise, no queue). */
  private requestNow(endpoint: UpstreamEndpoint, headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions): UpstreamStream | undefined {
    if (this.own) {
      const stream = this.own.requestNow(endpoint, headers, options);
      return stream && adaptH2Stream(stream);
    }
    return this.freeSession(endpoint)?.request(headers, options);
  }

  /** A session to this endpoint that takes another stream now, if any. */
  private freeSession(endpoint: UpstreamEndpoint): ClientHttp2Session | undefined {
    const sessions = this.byEndpoint.get(endpoint);
    if (sessions === undefined) return undefined;
    // a session exists, so the agent that made it loaded the kit
    const { isGracefullyClosing, activeStreams } = this.nodeKit as NodeCodec;
    for (let i = 0; i < sessions.length; i++) {
      const session = sessions[i] as ClientHttp2Session;
      if (!isGracefullyClosing(session) && activeStreams(session) < session.remoteSettings.maxConcurrentStreams!) return session;
    }
    return undefined;
  }

  private countStream(stream: TrackedStream, endpoint: UpstreamEndpoint): void {
    this.deps.observer.upstreamStreamsChanged(this.name, 1);
    this.active += 1;
    endpoint.outstanding += 1;
    stream[ENDPOINT] = endpoint;
    stream[OPENED] = performance.now();
    stream[ANSWERED] = false;
    stream.on('response', this.streamResponded);
    stream.on('close', this.streamClosed);
  }

  /** A dedicated mutual TLS connection speaking HTTP/1.1, for an Upgrade (WebSocket) request. */
  openTunnel(): Promise<OpenedTunnel> {
    return this.withFailover(undefined, async (endpoint) => {
      const socket = await connectMutualTls(endpoint, {
        identity: this.deps.identity,
        checkServerIdentity: this.checkServerIdentity,
        alpn: ['http/1.1'],
        timeoutMs: this.connectTimeoutMs,
      });
      if (socket.alpnProtocol !== 'http/1.1') {
        socket.destroy();
        throw new MeshcarError('bad_gateway', `${endpoint.key} did not accept HTTP/1.1 for an upgrade (ALPN ${String(socket.alpnProtocol)})`);
      }
      return { socket, endpoint };
    });
  }

  /**
   * Whether a reloaded config for this upstream can run on this pool (and keep its sessions):
   * same name, endpoints, identity, balancer and outlier detection. Timeouts, retries and the
   * circuit breaker are then changed in place by reconfigure().
   */
  canReuse(next: UpstreamConfig): boolean {
    const a = this.config;
    return (
      !this.closed &&
      a.name === next.name &&
      a.identity === next.identity &&
      JSON.stringify(a.endpoints) === JSON.stringify(next.endpoints) &&
      JSON.stringify(a.balancer) === JSON.stringify(next.balancer) &&
      JSON.stringify(a.outlierDetection) === JSON.stringify(next.outlierDetection)
    );
  }

  /** Applies a reloaded config that canReuse() accepted; requests already started keep what they read. */
  reconfigure(next: UpstreamConfig): void {
    const prev = this.config;
    this.config = next;
    this.timeoutMs = next.timeoutMs;
    this.idleTimeoutMs = next.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.connectTimeoutMs = Math.min(next.timeoutMs, CONNECT_TIMEOUT_CAP_MS);
    this.circuit = next.circuitBreaker ?? CIRCUIT_DEFAULTS;
    if (JSON.stringify(prev.retries) !== JSON.stringify(next.retries)) this.retry = new RetryPolicy(next.name, next.retries, this.deps.observer);
  }

  /**
   * Taken out of routing by a reload: its sessions finish their streams and close, DNS refresh
   * stops. Requests still running on it (and their retries) keep working.
   */
  retireAll(): void {
    this.endpoints.stop();
    this.closeSessionsGracefully();
  }

  /** Open HTTP/2 sessions (connected, SETTINGS received, not yet closed). */
  sessionCount(): number {
    return this.own ? this.own.size : this.sessions.size;
  }

  /** New sessions after a rotation do a full handshake, presenting the new certificate. */
  identityRotated(): void {
    this.nodeAgent?.forgetTlsSessions();
    this.own?.forgetTlsSessions();
  }

  /** Every session finishes its streams and closes; new requests would open new ones. */
  closeSessionsGracefully(): void {
    const kit = this.nodeKit;
    if (kit) for (const session of this.sessions) kit.closeGracefully(session);
    this.own?.closeGracefully();
  }

  close(): void {
    this.closed = true;
    this.endpoints.stop();
    this.health.close();
    this.nodeAgent?.destroy();
    for (const session of this.sessions) session.destroy();
    this.own?.close();
  }

  /** Tries `attempt` on endpoints in turn (`first`, if given, then round-robin) while they cannot be reached. */
  private async withFailover<T extends { endpoint: UpstreamEndpoint }>(first: UpstreamEndpoint | undefined, attempt: (endpoint: UpstreamEndpoint) => Promise<T>): Promise<T> {
    if (this.closed) throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
    if (this.endpoints.size === 0) await this.endpoints.pending();
    const attempts = Math.max(1, Math.min(this.endpoints.size, MAX_CONNECT_ATTEMPTS));
    let tried: Set<UpstreamEndpoint> | undefined;
    let lastError: MeshcarError | undefined;
    let next = first;
    for (;;) {
      const endpoint = next ?? this.endpoints.pick(Date.now(), undefined, tried);
      next = undefined;
      if (!endpoint) throw lastError ?? new MeshcarError('upstream_unavailable', `no address is known for upstream ${this.name}`);
      try {
        return await attempt(endpoint);
      } catch (err) {
        if (err instanceof MeshcarError && err.code === 'bad_request') throw err;
        const failure = classifyConnectError(err, endpoint.key);
        if (failure.tlsReason) this.deps.observer.tlsHandshakeFailed('outbound', failure.tlsReason, outboundFailure(endpoint.key, failure.tlsReason, err));
        const now = Date.now();
        if (endpoint.downUntil <= now) {
          this.deps.logger.warn({ upstream: this.name, endpoint: endpoint.key, code: failure.error.code, err: failure.error.message }, 'upstream endpoint failed');
        }
        endpoint.downUntil = now + this.deps.settings.endpointBackoffMs;
        this.health.failedWithPenalty(endpoint, 0);
        lastError = failure.error;
        (tried ??= new Set()).add(endpoint);
        if (tried.size >= attempts) throw lastError;
      }
    }
  }

  private adopt(session: ClientHttp2Session): void {
    if (this.closed) {
      session.destroy();
      return;
    }
    this.sessions.add(session);
    const endpoint = endpointOfSocket(session.socket);
    if (endpoint) {
      const list = this.byEndpoint.get(endpoint);
      if (list) list.push(session);
      else this.byEndpoint.set(endpoint, [session]);
    }
    this.deps.observer.upstreamSessionsChanged(this.name, 1);
    (this.nodeKit as NodeCodec).manageSession(session, this.deps.settings);
    session.on('error', (err) => this.deps.logger.debug({ upstream: this.name, err: describeError(err) }, 'upstream session error'));
    session.once('close', () => {
      this.sessions.delete(session);
      const list = endpoint && this.byEndpoint.get(endpoint);
      if (list) {
        list.splice(list.indexOf(session), 1);
        if (list.length === 0) this.byEndpoint.delete(endpoint);
      }
      this.deps.observer.upstreamSessionsChanged(this.name, -1);
    });
  }

  /** An address left DNS: its sessions wind down, its TLS ticket goes. */
  private retire(endpoint: UpstreamEndpoint): void {
    this.health.forget(endpoint);
    this.nodeAgent?.forgetTlsSessions(endpoint.key);
    this.own?.forgetTlsSessions(endpoint.key);
    this.own?.closeGracefully(endpoint);
    const kit = this.nodeKit;
    if (!kit) return;
    for (const session of this.sessions) {
      if (endpointOfSocket(session.socket) === endpoint && !kit.isGracefullyClosing(session)) kit.closeGracefully(session);
    }
  }
}

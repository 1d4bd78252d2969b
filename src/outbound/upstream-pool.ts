// Everything the outbound side keeps per upstream: its endpoints, its HTTP/2 agent and the
// sessions the agent opened, and the one way requests get a stream: check the circuit breaker;
// pick an endpoint (power of two choices over peak-EWMA load, see balancer.ts); use an open
// session there with a free stream slot at once (the fast path, here), else the slow path with
// failover (pool-failover.ts: the agent opens a session or queues for one, and an endpoint that
// cannot be reached makes way for the next). Also retirement and close; a reload's reuse check
// and in-place changes are in pool-reload.ts. The node codec's session books are in
// pool-sessions.ts (its agent, made at the first slow-path request, in pool-failover.ts), what
// is counted per stream (load, endpoint health) in pool-counting.ts; the pool's settings,
// dependencies and requester types in pool-contract.ts.
// With `codec: 'meshcar'` the sessions are src/h2 connections kept by H2SessionPool
// (h2-session-pool.ts) instead of http2-wrapper's; everything above the session (balancing,
// failover, circuit, counting) is shared.

import type { ClientHttp2Session, ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { DEFAULT_TUNNEL_IDLE_TIMEOUT_MS } from '../config/fields.js';
import type { UpstreamConfig } from '../config/outbound-config.js';
import { MeshcarError } from '../errors.js';
import { verifyServerSpiffeId } from '../identity/peer-identity.js';
import { EndpointSet, type UpstreamEndpoint } from './endpoints.js';
import type { PoolDependencies, StreamRequester } from './pool-contract.js';
import './async-bind.js'; // cheaper AsyncResource#bind for every session.request()
import type { UpstreamAgent } from './upstream-agent.js';
import type { NodeCodec } from './node-codec.js';
import { H2SessionPool } from './h2-session-pool.js';
import { adaptH2Stream, type UpstreamStream } from './upstream-stream.js';
import { watchEarlyEnd } from '../http/early-end.js';
import { isBadRequestError, isHeaderListTooLargeError } from './upstream-errors.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RetryPolicy } from './retry.js';
import { BALANCER_DEFAULTS, CIRCUIT_DEFAULTS, EndpointHealth, OUTLIER_DEFAULTS } from './balancer.js';
import type { CircuitBreakerConfig } from '../config/upstream-policy-config.js';
import { countStream, streamClosedListener, streamRespondedListener, type StreamClosed, type StreamResponded } from './pool-counting.js';
import { badRequest, endpointFailed, openSlowly } from './pool-failover.js';
import { connectMsOf, lookupWaitMsOf } from './pool-reload.js';
import { closeIfRemoved, freeSession, retire, sessionsTrustChanged } from './pool-sessions.js';
import { ProbedSessions } from './probed-sessions.js';
import type { TrustNow, UpstreamPathGuard } from './upstream-trust.js';
import { StreamWait } from './stream-wait.js';
import { noteSession } from './goaway-refused.js';
import { refuseOverPeerList } from './head-limits.js';

/** How far past circuitBreaker.maxRequests retries may go: a fifth of it, at least 3 (Envoy's max_retries default). */
export function retryHeadroom(maxRequests: number): number {
  return Math.max(3, Math.ceil(maxRequests / 5));
}

export class UpstreamPool {
  readonly name: string;
  // timeouts, retries and circuit limits change in place on a live reload (reconfigure())
  timeoutMs: number;
  /** No bytes either way on a stream for this long ends it (504 before the answer). */
  idleTimeoutMs: number;
  /** No bytes either way on a WebSocket tunnel for this long closes it. */
  tunnelIdleTimeoutMs: number;
  retry: RetryPolicy;
  readonly endpoints: EndpointSet;
  /** Load estimate and outlier ejection of the endpoints. */
  readonly health: EndpointHealth<UpstreamEndpoint>;
  circuit: CircuitBreakerConfig;
  // Internal state the pool-*.ts functions keep (not for users of the pool).
  /**
   * The sessions when the codec is `node`: http2-wrapper's agent over core http2, made at the
   * first request (node-codec.ts: the outbound loads http2-wrapper before it listens).
   */
  nodeAgent: UpstreamAgent | undefined = undefined;
  /** The node codec's module, once the agent is made (its sessions are managed with it). */
  nodeKit: NodeCodec | undefined = undefined;
  /** The sessions when the codec is `meshcar` (no agent then: nothing of http2-wrapper is made). */
  readonly own: H2SessionPool | undefined;
  /** openStream() may be given a flat header list (meshcar's codec); Node's core http2 takes objects only. */
  readonly takesHeaderList: boolean;
  readonly sessions = new Set<ClientHttp2Session>();
  /** Open sessions per endpoint, oldest first: the fast path's candidates. */
  readonly byEndpoint = new Map<UpstreamEndpoint, ClientHttp2Session[]>();
  /** Those gone silent under a probe: requests wait for its verdict (probed-sessions.ts). */
  readonly probed = new ProbedSessions<ClientHttp2Session>();
  /** The guards of open WebSocket tunnels (websocket.ts), each on its own connection: a bundle change reaches them too. */
  readonly tunnelGuards = new Set<UpstreamPathGuard>();
  /** Streams open toward the upstream (requests in flight). */
  active = 0;
  /** Requests waiting for a session or a stream slot (the slow path). */
  pending = 0;
  /** WebSocket tunnels open or opening: each holds a circuit slot (maxRequests) as a request does. */
  tunnels = 0;
  /**
   * Why a reload revoked this pool's tunnels (cutTunnels); a tunnel whose 101 comes after is cut
   * as it opens. Never cleared: only a retired pool is revoked, and it never serves again.
   */
  tunnelsRevoked: string | undefined = undefined;
  /** Requests waiting out a retry's backoff: they come back to this pool (attempt-retry.ts). */
  retrying = 0;
  /** One function for every stream's 'response' and 'close', not a closure per request. */
  readonly streamResponded: StreamResponded;
  readonly streamClosed: StreamClosed;
  closed = false;
  /** Taken out of routing by a reload (retireAll): a session is closed once no stream runs on the pool. */
  retired = false;
  /** The config this pool runs now (what reload compares against: pool-reload.ts). */
  config: UpstreamConfig;
  /** Checks an upstream's SPIFFE ID on every dial (sessions here, tunnels in pool-tunnel.ts). */
  readonly checkServerIdentity: ReturnType<typeof verifyServerSpiffeId>;
  /** Bounds TCP connect + TLS, then the peer's SETTINGS: min(connectTimeout, timeout when not 0) (connectMsOf); reconfigure() changes it. */
  connectMs: number;
  /** How long a request waits for a first DNS lookup (first-addresses.ts); reconfigure() changes it. */
  lookupWaitMs: number;

  constructor(config: UpstreamConfig, readonly deps: PoolDependencies) {
    this.name = config.name;
    this.config = config;
    this.timeoutMs = config.timeoutMs;
    this.idleTimeoutMs = config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.tunnelIdleTimeoutMs = config.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_MS;
    this.retry = new RetryPolicy(config.name, config.retries, deps.observer);
    this.connectMs = connectMsOf(config);
    this.lookupWaitMs = lookupWaitMsOf(config.timeoutMs);
    this.checkServerIdentity = verifyServerSpiffeId(config.identity);
    const settings = deps.settings;
    const decayMs = config.balancer?.decayMs ?? BALANCER_DEFAULTS.decayMs;
    this.circuit = config.circuitBreaker ?? CIRCUIT_DEFAULTS;
    this.endpoints = new EndpointSet(config.endpoints, {
      refreshMs: settings.dnsRefreshMs,
      decayMs,
      logger: deps.logger,
      ...(settings.lookup ? { lookup: settings.lookup } : {}),
      upstream: config.name,
      observer: deps.observer,
    });
    this.own =
      deps.codec === 'meshcar'
        ? new H2SessionPool({
            upstream: config.name,
            identity: deps.identity,
            budgets: deps.budgets,
            checkServerIdentity: this.checkServerIdentity,
            connectTimeoutMs: () => this.connectMs,
            dialFailed: (endpoint, err) => void endpointFailed(this, endpoint, err),
            sessionAdopted: (endpoint) => {
              this.closeIfUnused();
              closeIfRemoved(this, endpoint);
            },
            policy: settings,
            observer: deps.observer,
            logger: deps.logger,
          })
        : undefined;
    this.takesHeaderList = this.own !== undefined;
    const health = new EndpointHealth(config.name, () => this.endpoints.all(), decayMs, config.outlierDetection ?? OUTLIER_DEFAULTS, deps.observer, deps.logger);
    this.health = health;
    this.streamResponded = streamRespondedListener(health);
    this.streamClosed = streamClosedListener(this, health, deps.observer, config.name);
    this.endpoints.on('removed', (endpoint) => retire(this, endpoint));
  }

  /** Bounds TCP connect + TLS, then the peer's SETTINGS: read per dial and per wait (a reload may change it). */
  get connectTimeoutMs(): number {
    return this.connectMs;
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
   * failed as `avoid`, and every endpoint it went to as `tried`: one none of them is, when there
   * is a healthy one; else another tried one, else the one that failed.
   */
  openStream(headers: OutgoingHttpHeaders | string[], options: ClientSessionRequestOptions, requester: StreamRequester, avoid?: UpstreamEndpoint, tried?: ReadonlySet<UpstreamEndpoint>): StreamWait | undefined {
    // a retry (`avoid` given) was admitted as its request: a new request that took the slot
    // during its wait had it found the circuit full, and its app got 503 circuit_open in place
    // of the upstream's own 429 or 503 (the outbound review). Holding slots for waiting retries
    // instead shut healthy requests out for whole Retry-After waits (its second review), and
    // letting every retry past took 100 loops to 87 requests in flight against maxRequests 2
    // (its third): a retry may go past the limit by retryHeadroom(), as Envoy's max_retries bounds its own
    const inFlight = this.active + this.pending + this.tunnels;
    const limit = avoid === undefined ? this.circuit.maxRequests : this.circuit.maxRequests + retryHeadroom(this.circuit.maxRequests);
    if (!this.closed && inFlight >= limit) return void requester.streamFailed(this.circuitOpen(`${inFlight} requests are in flight (circuitBreaker.maxRequests ${this.circuit.maxRequests}${avoid === undefined ? '' : `, and ${limit - this.circuit.maxRequests} more for retries`})`));
    const now = performance.now();
    const endpoint = this.closed ? undefined : avoid === undefined ? this.endpoints.pick(now) : (this.endpoints.pick(now, avoid, tried) ?? this.endpoints.pick(now, avoid) ?? this.endpoints.pick(now));
    if (endpoint) {
      let stream: UpstreamStream | undefined;
      try {
        stream = this.requestNow(endpoint, headers, options);
      } catch (err) {
        // over this endpoint's SETTINGS_MAX_HEADER_LIST_SIZE: the slow path tries the others (withFailover)
        if (isBadRequestError(err) && !isHeaderListTooLargeError(err)) return void requester.streamFailed(badRequest(err));
        // the session was closing under us: the slow path finds or makes another
      }
      if (stream) {
        countStream(this, stream, endpoint);
        return void requester.streamOpened(stream, endpoint);
      }
    }
    if (!this.closed && this.pending >= this.circuit.maxPending) return void requester.streamFailed(this.circuitOpen(`${this.pending} requests are waiting for a stream (circuitBreaker.maxPending ${this.circuit.maxPending})`));
    this.pending += 1;
    // the requester cancels it when it goes away (the app left, its deadline passed): the
    // request stops waiting at once, and `pending` goes down with it
    const wait = new StreamWait();
    openSlowly(this, headers, options, endpoint, wait).then(
      (opened) => {
        this.pending -= 1;
        requester.streamOpened(opened.stream, opened.endpoint);
      },
      (err: MeshcarError) => {
        this.pending -= 1;
        if (!wait.cancelled) requester.streamFailed(err);
      },
    );
    return wait;
  }

  /**
   * A WebSocket tunnel's circuit slot, taken before it dials and held until tunnelClosed(): a
   * circuit_open error when maxRequests are in flight. Tunnels went around the breaker (20 of
   * 20 upgrades opened under maxRequests 2, and a plain request beside them was let through).
   */
  admitTunnel(): MeshcarError | undefined {
    const inFlight = this.active + this.pending + this.tunnels;
    if (!this.closed && inFlight >= this.circuit.maxRequests) return this.circuitOpen(`${inFlight} requests are in flight, WebSocket tunnels included (circuitBreaker.maxRequests ${this.circuit.maxRequests})`);
    this.tunnels += 1;
    return undefined;
  }

  tunnelClosed(): void {
    this.tunnels -= 1;
  }

  private circuitOpen(why: string): MeshcarError {
    this.deps.observer.circuitOpened?.(this.name);
    return new MeshcarError('circuit_open', `upstream ${this.name}: ${why}`);
  }

  /** A stream on an open session of this endpoint with a free slot, or undefined (no promise, no queue). */
  private requestNow(endpoint: UpstreamEndpoint, headers: OutgoingHttpHeaders | string[], options: ClientSessionRequestOptions): UpstreamStream | undefined {
    if (this.own) {
      const stream = this.own.requestNow(endpoint, headers, options);
      return stream && adaptH2Stream(stream);
    }
    const session = freeSession(this, endpoint);
    if (session === undefined) return undefined;
    refuseOverPeerList(session, headers as OutgoingHttpHeaders);
    const stream = session.request(headers as OutgoingHttpHeaders, options); // an object: see takesHeaderList
    return watchEarlyEnd(noteSession(stream));
  }

  /**
   * Taken out of routing by a reload: its sessions finish their streams and close, DNS refresh
   * stops. Requests still running on it (and their retries) keep working.
   */
  retireAll(): void {
    this.retired = true;
    this.endpoints.retire();
    this.health.retire();
    this.closeSessionsGracefully();
  }

  /**
   * A reload changed this upstream's identity: its WebSocket tunnels, which cannot wind down as
   * sessions do, are cut, as a trust bundle that drops their upstream cuts them.
   */
  cutTunnels(why: string): void {
    // a tunnel still dialling or awaiting its 101 has no guard yet: it is refused at its 101
    this.tunnelsRevoked = why;
    for (const guard of [...this.tunnelGuards]) guard.revoke(why);
  }

  /**
   * A retired pool's sessions close once nothing could use them: called when a session opens
   * (a dial outlives the request that started it) and when a waiting retry is dropped.
   */
  closeIfUnused(): void {
    if (this.retired && this.active === 0 && this.pending === 0 && this.retrying === 0) this.closeSessionsGracefully();
  }

  /**
   * No stream open or awaited, no retry waiting to come back, no session, no WebSocket tunnel
   * open or opening: a retired pool in this state holds nothing and can go. A tunnel keeps it:
   * only pools kept are told of a new trust bundle or a reload's identity change, which must
   * still reach a tunnel whose upstream they drop (one opening when the pool was retired too).
   */
  isIdle(): boolean {
    return this.active === 0 && this.pending === 0 && this.retrying === 0 && this.sessionCount() === 0 && this.tunnels === 0 && this.tunnelGuards.size === 0;
  }

  /** Open HTTP/2 sessions (connected, SETTINGS received, not yet closed). */
  sessionCount(): number {
    return this.own ? this.own.size : this.sessions.size;
  }

  /**
   * New sessions after a rotation do a full handshake, presenting the new certificate. With a new
   * certificate the open sessions also take no new streams and close once theirs are done: the
   * callee destroys a connection when the certificate it was opened with expires, streams in
   * flight and all, so sessions kept busy past that moment lost their requests (a POST in flight
   * answered 502 upstream_reset, its app having run it). The old certificate outlives the
   * rotation by the renewal's margin, which the streams in flight now have to finish.
   */
  identityRotated(newCertificate: boolean, trust?: TrustNow): void {
    this.nodeAgent?.forgetTlsSessions();
    this.own?.forgetTlsSessions();
    // a new bundle: sessions to upstreams it no longer vouches for are cut (upstream-trust.ts)
    if (trust) {
      sessionsTrustChanged(this, trust);
      this.own?.trustChanged(trust);
    }
    if (newCertificate) this.closeSessionsGracefully();
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
}

// The outbound side, assembled: the app's loopback port (HTTP/1.1 and h2c) → route by Host →
// the upstream's pool of mutual TLS HTTP/2 sessions (src/h2, or core http2 with http2-wrapper
// on `http2.codec: node`) → the upstream sidecar. Also listen, drain, close, and what tests and
// the sidecar need to see (sessions, activity). Its interface and options: outbound-contract.ts.

import { bundleRoots } from '../pki/chain-to-roots.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '../config/address.js';
import { DEFAULT_HTTP2 } from '../config/http2-config.js';
import type { UpstreamConfig } from '../config/outbound-config.js';
import type { Svid } from '../identity/svid.js';
import type { MeshcarError } from '../errors.js';
import { refusedRequest } from '../http/client-error.js';
import { NO_OBSERVER, type TrafficObserver } from '../metrics/traffic.js';
import { Activity } from './activity.js';
import { DialBudgets } from './dial-budgets.js';
import type { OutboundContext } from './exchange.js';
import { UNKNOWN_PEER } from '../metrics/unknown-peer.js';
import { forwardH2c } from './forward-h2c.js';
import { endGrpcCalls, GRPC_CUT_GRACE_MS } from './drain-grpc.js';
import { forwardHttp1, http1BodyBroken, refuseHttp1Expectation } from './forward-http1.js';
import { AppListener } from './listener.js';
import { awaitFirstRequests } from './drain-first-requests.js';
import { UpstreamRouter } from './router.js';
import { UpstreamPool } from './upstream-pool.js';
import type { PoolSettings } from './pool-contract.js';
import { canReuse, reconfigure } from './pool-reload.js';
import { loadNodeCodec } from './node-codec.js';
import { tunnelUpgrade } from './websocket.js';
import { screenH2c, screenHttp1 } from './schema-check.js';
import type { SchemaGuard } from '../schema/guard.js';
import { upstreamsView, type UpstreamView } from './upstreams-view.js';

export type { LookupAll } from './endpoints.js';
export type { UpstreamAddressView, UpstreamView } from './upstreams-view.js';
export type { Outbound, OutboundOptions, OutboundTuning } from './outbound-contract.js';
import type { Outbound, OutboundOptions } from './outbound-contract.js';

const INITIAL_RESOLVE_WAIT_MS = 2_000;

const DEFAULTS = {
  maxSessionAgeMs: 10 * 60_000,
  pingIntervalMs: 30_000,
  dnsRefreshMs: 5_000,
  endpointBackoffMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  // as the circuit breaker's default maxRequests: one app connection may fill it, never hold more
  maxAppStreams: 1024,
  keepAliveTimeoutMs: 65_000,
  headersTimeoutMs: 20_000,
} as const;

export function createOutbound(options: OutboundOptions): Outbound {
  return new OutboundService(options);
}

class OutboundService implements Outbound, OutboundContext {
  router: UpstreamRouter<UpstreamPool>;
  readonly observer: TrafficObserver;
  readonly logger: Logger;
  readonly activity = new Activity();
  draining = false;
  cutBy: 'drain_timeout' | 'shutdown' | undefined = undefined;
  private pools: UpstreamPool[];
  /**
   * Pools a reload took out of routing, until they are idle (checked at each reload: one that
   * has no streams, waits, retries waiting or sessions left is closed and dropped; 2,000
   * reloads used to keep 2,000 pools); the rest are closed on close().
   */
  private readonly retired = new Set<UpstreamPool>();
  private readonly settings: PoolSettings;
  /** What failed dials may cost per endpoint: one for every pool, so an endpoint's budget is the same whichever upstream names it, and survives a reload. */
  private readonly budgets: DialBudgets;
  private listening = false;
  private readonly listener: AppListener;
  private readonly onRotated: (current: Svid, previous: Svid) => void;
  private drained: Promise<void> | undefined;
  private closed = false;
  /** Empty (the common case): every call goes straight to its forwarder. */
  private schemas: ReadonlyMap<string, SchemaGuard>;

  constructor(private readonly options: OutboundOptions) {
    const tuning = options.options ?? {};
    this.observer = options.observer ?? NO_OBSERVER;
    this.logger = options.logger;
    const settings: PoolSettings = {
      maxSessionAgeMs: tuning.maxSessionAgeMs ?? DEFAULTS.maxSessionAgeMs,
      pingIntervalMs: tuning.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      dnsRefreshMs: tuning.dnsRefreshMs ?? DEFAULTS.dnsRefreshMs,
      endpointBackoffMs: tuning.endpointBackoffMs ?? DEFAULTS.endpointBackoffMs,
      ...(tuning.lookup ? { lookup: tuning.lookup } : {}),
    };
    this.settings = settings;
    this.budgets = new DialBudgets(this.logger);
    this.schemas = options.schemas ?? new Map();
    this.pools = options.config.upstreams.map((upstream) => this.newPool(upstream));
    this.router = new UpstreamRouter(this.pools.map((pool) => [pool.name, pool] as const));

    // new sessions must not resume the old certificate's TLS session; and with a new certificate
    // the open ones wind down (see UpstreamPool.identityRotated). A bundle-only change keeps them
    this.onRotated = (current, previous) => {
      const newCertificate = current.chainPem !== previous.chainPem || current.privateKeyPem !== previous.privateKeyPem;
      // a new bundle is checked against each open session's upstream path (upstream-trust.ts)
      const anchorsPem = options.identity.tls().anchorsPem;
      const trust = current.bundlePem !== previous.bundlePem ? { anchorsPem, roots: bundleRoots(anchorsPem) } : undefined;
      for (const pool of this.pools) pool.identityRotated(newCertificate, trust);
      if (trust) for (const pool of this.retired) pool.identityRotated(false, trust);
    };
    options.identity.on('rotated', this.onRotated);

    this.listener = new AppListener(
      {
        request: (req: IncomingMessage, res: ServerResponse) => {
          if (this.schemas.size === 0) forwardHttp1(this, req, res);
          else screenHttp1(this, this.schemas, req, res, (schema, preread) => forwardHttp1(this, req, res, schema, preread));
        },
        brokenBody: http1BodyBroken,
        expectationFailed: (req: IncomingMessage, res: ServerResponse) => refuseHttp1Expectation(this, req, res),
        // no Host was read: the peer is the label of requests that matched no upstream
        refused: (refusal, head) => this.observer.requestRefused?.(refusedRequest('outbound', UNKNOWN_PEER, refusal, head)),
        upgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => tunnelUpgrade(this, this.schemas, req, socket, head),
        stream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
          if (this.schemas.size === 0) forwardH2c(this, stream, headers);
          else screenH2c(this, this.schemas, stream, headers, (schema, preread, trailers) => forwardH2c(this, stream, headers, schema, preread, trailers));
        },
      },
      {
        maxHeaderBytes: tuning.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
        keepAliveTimeoutMs: tuning.keepAliveTimeoutMs ?? DEFAULTS.keepAliveTimeoutMs,
        maxAppStreams: tuning.maxAppStreams ?? DEFAULTS.maxAppStreams,
        headersTimeoutMs: tuning.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
      },
      this.logger,
    );
  }

  get address(): HostPort | undefined {
    return this.listener.address;
  }

  get inFlight(): number {
    return this.activity.inFlight;
  }

  async listen(): Promise<HostPort> {
    // the node codec's http2-wrapper is loaded now, before any request can arrive (node-codec.ts)
    if ((this.options.codec ?? DEFAULT_HTTP2.codec) === 'node') await loadNodeCodec();
    // names resolved before the port opens, but a slow resolver does not hold up readiness:
    // requests that come before the first answer wait for it
    await Promise.race([Promise.all(this.pools.map((pool) => pool.start())), delay(INITIAL_RESOLVE_WAIT_MS, undefined, { ref: false })]);
    this.listening = true;
    const bound = await this.listener.listen(this.options.config.listen);
    // host:port as a string, as 'inbound listening' and the CLI give it
    this.logger.info({ address: formatHostPort(bound), upstreams: this.pools.map((p) => p.name) }, 'outbound listening');
    return bound;
  }

  drain(timeoutMs: number): Promise<void> {
    this.drained ??= this.drainOnce(timeoutMs);
    return this.drained;
  }

  /**
   * The wind-down without closing the listener (a drain whose inbound side still serves a call:
   * the app may need the outbound for it): answers carry `Connection: close`, h2c sessions get
   * GOAWAY, idle connections close; new connections are still taken. drain() then closes it.
   */
  windDown(): void {
    this.draining = true;
    this.listener.windDown();
  }

  private async drainOnce(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.listener.stopAccepting();
    this.listener.windDown();
    const deadline = performance.now() + timeoutMs;
    // then a connection taken before the listener closed whose first request is still coming
    const idle = (await this.activity.whenIdle(timeoutMs)) && (await awaitFirstRequests(this.listener, this.activity, deadline));
    if (!idle) {
      const inFlight = this.activity.inFlight;
      // what is still open is cut by us: its records say so (exchange.ts)
      this.cutBy ??= 'drain_timeout';
      // gRPC calls get a status first, and a moment for it to reach the app (drain-grpc.ts)
      const grpcEnded = endGrpcCalls(this.listener.openH2cStreams());
      const gone = grpcEnded > 0 && (await this.activity.whenIdle(GRPC_CUT_GRACE_MS));
      if (!gone) this.listener.destroyAll();
      this.logger.warn({ inFlight, grpcEnded }, 'outbound drain timed out; closing what is left');
    }
    for (const pool of this.pools) pool.closeSessionsGracefully();
    for (const pool of this.retired) pool.closeSessionsGracefully();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.draining = true;
    this.options.identity.off('rotated', this.onRotated);
    this.cutBy ??= 'shutdown';
    this.listener.destroyAll();
    for (const pool of this.pools) pool.close();
    for (const pool of this.retired) pool.close();
    this.retired.clear();
  }

  private newPool(upstream: UpstreamConfig): UpstreamPool {
    return new UpstreamPool(upstream, { identity: this.options.identity, logger: this.logger, observer: this.observer, settings: this.settings, codec: this.options.codec ?? DEFAULT_HTTP2.codec, budgets: this.budgets });
  }

  setUpstreams(upstreams: readonly UpstreamConfig[]): void {
    if (this.closed) return;
    const byName = new Map(this.pools.map((pool) => [pool.name.toLowerCase(), pool] as const));
    const kept = new Set<UpstreamPool>();
    const pools = upstreams.map((upstream) => {
      const old = byName.get(upstream.name.toLowerCase());
      if (old && canReuse(old, upstream)) {
        reconfigure(old, upstream);
        kept.add(old);
        return old;
      }
      const pool = this.newPool(upstream);
      // a DNS outage does not empty an upstream: the replaced pool's last addresses carry over
      if (old) pool.endpoints.adoptLastAddresses(old.endpoints);
      // names resolve in the background; requests before the first answer wait for it
      if (this.listening) void pool.start();
      return pool;
    });
    // one assignment: a request routes by the old table or the new, never half of each
    this.router = new UpstreamRouter(pools.map((pool) => [pool.name, pool] as const));
    const previous = this.pools;
    this.pools = pools;
    const names = new Set(pools.map((pool) => pool.name));
    for (const pool of previous) {
      if (kept.has(pool)) continue;
      this.retired.add(pool);
      pool.retireAll();
      // removed, not replaced: its address gauge goes (0 would read as an upstream with no address)
      if (!names.has(pool.name)) this.observer.upstreamRemoved?.(pool.name);
    }
    // a tunnel never finishes as a request does: one to a peer the config now names another
    // identity for (on a pool retired now or by an earlier reload) would talk to it until either
    // side ends it. An upstream removed keeps its tunnels, as Envoy's drained clusters keep their
    // streams: its peer is still the one the config named.
    const identities = new Map(upstreams.map((upstream) => [upstream.name.toLowerCase(), upstream.identity] as const));
    for (const pool of this.retired) {
      const identity = identities.get(pool.name.toLowerCase());
      if (identity !== undefined && identity !== pool.config.identity) pool.cutTunnels(`a reload changed the upstream's identity to ${identity}`);
    }
    // the retired pools that are idle go now, those just retired included (one never used, or
    // with nothing left, is not kept until the next reload)
    for (const pool of this.retired) {
      if (!pool.isIdle()) continue;
      pool.close();
      this.retired.delete(pool);
    }
    this.logger.info({ upstreams: pools.map((p) => p.name), kept: [...kept].map((p) => p.name) }, 'outbound upstreams reloaded');
  }

  setSchemas(schemas: ReadonlyMap<string, SchemaGuard>): void {
    this.schemas = schemas;
  }

  idleForMs(): number {
    return this.activity.idleForMs();
  }

  /** Pools taken out by reloads and not yet idle (tests, diagnostics). */
  get retiredPools(): number {
    return this.retired.size;
  }

  sessionCount(upstream: string): number {
    return this.router.lookup(upstream)?.sessionCount() ?? 0;
  }

  upstreams(): UpstreamView[] {
    return upstreamsView(this.pools);
  }
}

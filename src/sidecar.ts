// The composition root: the only module that sees the whole config. It builds each part from
// its own slice (identity → listeners → ready), wires metrics and logs in, and runs the
// shutdown sequence (drain inbound, keep outbound serving the app, then stop).

import type { Logger } from 'pino';
import type { SidecarConfig } from './config/sidecar-config.js';
import { redactConfig } from './config/freeze.js';
import { obtainIdentity, identityFromFiles, type RunningIdentity } from './identity/bootstrap.js';
import { Metrics } from './metrics/registry.js';
import { NO_OBSERVER, type TrafficObserver } from './metrics/traffic.js';
import { TrafficMetrics } from './metrics/traffic-metrics.js';
import { AccessLog, combineObservers } from './metrics/access-log.js';
import { startAdminServer, type RunningAdmin } from './admin/server.js';
import { createInbound } from './inbound/index.js';
import { createOutbound } from './outbound/index.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** After the inbound side has drained, the outbound side stops once the app has been quiet this long. */
const OUTBOUND_QUIET_MS = 1_000;

interface Side {
  listen(): Promise<{ host: string; port: number }>;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface SidecarAddresses {
  readonly admin: { host: string; port: number };
  readonly inbound?: { host: string; port: number };
  readonly outbound?: { host: string; port: number };
}

export class Sidecar {
  private draining = false;
  private ready = false;
  private inbound: Side | undefined;
  private outbound: (Side & { idleForMs?(): number }) | undefined;
  private running: RunningIdentity | undefined;
  private admin: RunningAdmin | undefined;
  private addressesValue: SidecarAddresses | undefined;
  readonly startedAt = Date.now();
  /** Milliseconds from start() until ready, for logs and benchmarks. */
  readyAfterMs: number | undefined;

  readonly traffic: TrafficMetrics;
  private readonly observer: TrafficObserver;

  constructor(readonly config: SidecarConfig, private readonly logger: Logger, readonly metrics = new Metrics()) {
    const routesByUpstream = new Map((config.outbound?.upstreams ?? []).map((u) => [u.name, u.routes] as const));
    this.traffic = new TrafficMetrics(metrics, { routesByUpstream });
    // metrics.requests: false (the benchmark's "metrics off") leaves the traffic families out of
    // the hot path entirely; process, identity and build metrics are still exported
    const observers: TrafficObserver[] = [];
    if (config.metrics.requests) observers.push(this.traffic);
    if (config.log.access) observers.push(new AccessLog(logger, config.metrics.requests ? (record) => this.traffic.routeOf(record) : undefined));
    this.observer = observers.length === 0 ? NO_OBSERVER : combineObservers(observers);
  }

  get addresses(): SidecarAddresses {
    if (!this.addressesValue) throw new Error('the sidecar has not started');
    return this.addressesValue;
  }

  async start(): Promise<SidecarAddresses> {
    const { config, logger } = this;
    const started = process.hrtime.bigint();
    // admin first: /healthz answers and /ready says 503 while the identity is fetched
    this.admin = await startAdminServer(config.admin.listen, this.adminState(), logger.child({ component: 'admin' }));
    this.running = await this.startIdentity();
    this.watchIdentityMetrics(this.running);

    const identity = this.running.identity;
    if (config.inbound) {
      this.inbound = createInbound({ config: config.inbound, identity, trustDomain: config.trustDomain, ownSpiffeId: config.spiffeId, logger: logger.child({ component: 'inbound' }), observer: this.observer });
    }
    if (config.outbound) {
      this.outbound = createOutbound({ config: config.outbound, identity, logger: logger.child({ component: 'outbound' }), observer: this.observer });
    }
    const [inbound, outbound] = await Promise.all([this.inbound?.listen(), this.outbound?.listen()]);
    this.addressesValue = { admin: { host: this.admin.host, port: this.admin.port }, ...(inbound ? { inbound } : {}), ...(outbound ? { outbound } : {}) };
    this.ready = true;
    this.readyAfterMs = Number(process.hrtime.bigint() - started) / 1e6;
    logger.info({ spiffeId: config.spiffeId, ...this.addressesValue, readyAfterMs: Math.round(this.readyAfterMs) }, 'sidecar ready');
    return this.addressesValue;
  }

  private startIdentity(): Promise<RunningIdentity> {
    const { identity, spiffeId, trustDomain } = this.config;
    const logger = this.logger.child({ component: 'identity' });
    if (identity.source === 'files') return identityFromFiles({ spiffeId, files: identity.files, logger });
    return obtainIdentity({
      spiffeId,
      trustDomain,
      dir: identity.dir,
      ca: { url: identity.ca.url, bundlePath: identity.ca.bundle, tokenPath: identity.ca.token },
      ttlMs: identity.ttlMs,
      renewal: identity.renewal,
      logger,
    });
  }

  private watchIdentityMetrics(running: RunningIdentity): void {
    const { identityCertExpiry, identityRenewals } = this.metrics;
    const expiry = identityCertExpiry.labels(running.identity.spiffeId);
    expiry.set(running.identity.current().notAfter.getTime() / 1000);
    running.identity.on('rotated', (svid) => expiry.set(svid.notAfter.getTime() / 1000));
    running.identity.on('renewal', (event) => identityRenewals.labels(event.result).inc());
  }

  private adminState() {
    return {
      ready: () => this.ready,
      draining: () => this.draining,
      identity: () => {
        if (!this.running) return { spiffeId: this.config.spiffeId, status: 'starting' };
        const svid = this.running.identity.current();
        return {
          spiffeId: svid.spiffeId,
          serial: svid.serialHex,
          notBefore: svid.notBefore.toISOString(),
          notAfter: svid.notAfter.toISOString(),
          nextRenewal: this.running.nextRenewalAt()?.toISOString() ?? null,
          source: this.config.identity.source,
        };
      },
      config: () => redactConfig(this.config),
      metrics: (accept: string | undefined) => this.metrics.renderFor(accept),
      views: { '/endpoints': () => ({ endpoints: this.traffic.endpoints() }) },
    };
  }

  /**
   * Graceful shutdown: /ready turns 503; inbound stops accepting and finishes what is in
   * flight; outbound keeps serving the app (which may be shutting down too and still need its
   * calls) until it has been quiet for a moment; everything is bounded by the drain timeout.
   */
  async drain(timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    this.logger.info({ timeoutMs }, 'draining');
    await this.inbound?.drain(timeoutMs);
    if (this.outbound) {
      while (Date.now() < deadline && (this.outbound.idleForMs?.() ?? OUTBOUND_QUIET_MS) < OUTBOUND_QUIET_MS) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await this.outbound.drain(Math.max(0, deadline - Date.now()));
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.running?.stop();
    await Promise.all([this.inbound?.close(), this.outbound?.close()]);
    await this.admin?.close();
    this.logger.info('stopped');
  }
}

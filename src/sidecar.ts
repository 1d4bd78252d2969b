// The composition root: the only module that sees the whole config. It builds each part from
// its own slice (identity → listeners → ready), wires metrics and logs in, applies a reloaded
// config to the parts that can change live, and runs the shutdown sequence (drain inbound,
// keep outbound serving the app, then stop).

import type { Logger } from 'pino';
import { loadSidecarConfig, planReload, type SidecarConfig } from './config/sidecar-config.js';
import { redactConfig } from './config/freeze.js';
import { effectiveYamlView } from './config/effective-yaml.js';
import { ConfigError, formatIssue } from './config/issues.js';
import { describeError, MeshcarError } from './errors.js';
import { obtainIdentity, identityFromFiles, type RunningIdentity } from './identity/bootstrap.js';
import type { WorkloadIdentity } from './identity/workload-identity.js';
import type { WorkerCluster } from './workers/contract.js';
import { rootCount, type Svid } from './identity/svid.js';
import { Metrics } from './metrics/registry.js';
import { NO_OBSERVER, type Direction, type RequestRecord, type TlsFailureDetail, type TlsFailureReason, type TrafficObserver } from './metrics/traffic.js';
import { TlsFailureLog } from './tls-failures/failure-log.js';
import { TrafficMetrics } from './metrics/traffic-metrics.js';
import { AccessLog } from './metrics/access-log.js';
import { startAdminServer, type RunningAdmin } from './admin/server.js';
import { createInbound, type Inbound } from './inbound/index.js';
import { createOutbound, type Outbound } from './outbound/index.js';
import { loadGuards, type Guards } from './schema/guards.js';
import { discoveryDocument } from './metrics/discovery.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** After the inbound side has drained, the outbound side stops once the app has been quiet this long. */
const OUTBOUND_QUIET_MS = 1_000;

interface Side {
  listen(): Promise<{ host: string; port: number }>;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The answer to a reload: what changed live and what waits for a restart, or why nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly applied: readonly string[]; readonly restartRequired: readonly string[] }
  | { readonly ok: false; readonly messages: readonly string[] };

type ObserverMethod = (...args: unknown[]) => unknown;

/**
 * The one observer the data plane is given for its whole life; a reload swaps the observers it
 * forwards to (request metrics on or off, access log on or off), so no listener or session is
 * rebuilt. It counts open upstream sessions and streams itself, so a swap hands the gauges over
 * exactly. Methods beyond the four every observer has (the optional ones, such as retry and
 * abuse counters) are forwarded by name to whichever targets implement them.
 */
class ForwardingObserver {
  private readonly sessions = new Map<string, number>();
  private readonly streams = new Map<string, number>();

  constructor(private targets: readonly TrafficObserver[], methodNames: Iterable<string>) {
    for (const key of methodNames) {
      if (key === 'constructor' || key in this) continue;
      Object.defineProperty(this, key, {
        value: (...args: unknown[]) => {
          for (const target of this.targets) (target as unknown as Record<string, ObserverMethod | undefined>)[key]?.(...args);
        },
      });
    }
  }

  /** This object, as the data plane sees it. */
  asObserver(): TrafficObserver {
    return this as unknown as TrafficObserver;
  }

  swap(next: readonly TrafficObserver[]): void {
    const previous = this.targets;
    // the old targets' gauges go back to zero and the new ones' start from what is open now
    for (const [upstream, n] of this.sessions) {
      if (n === 0) continue;
      for (const target of previous) target.upstreamSessionsChanged(upstream, -n);
      for (const target of next) target.upstreamSessionsChanged(upstream, n);
    }
    for (const [upstream, n] of this.streams) {
      if (n === 0) continue;
      for (const target of previous) target.upstreamStreamsChanged(upstream, -n);
      for (const target of next) target.upstreamStreamsChanged(upstream, n);
    }
    this.targets = next;
  }

  requestFinished(record: RequestRecord): void {
    for (const target of this.targets) target.requestFinished(record);
  }

  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail): void {
    for (const target of this.targets) target.tlsHandshakeFailed(direction, reason, detail);
  }

  upstreamSessionsChanged(upstream: string, delta: number): void {
    this.sessions.set(upstream, (this.sessions.get(upstream) ?? 0) + delta);
    for (const target of this.targets) target.upstreamSessionsChanged(upstream, delta);
  }

  upstreamStreamsChanged(upstream: string, delta: number): void {
    this.streams.set(upstream, (this.streams.get(upstream) ?? 0) + delta);
    for (const target of this.targets) target.upstreamStreamsChanged(upstream, delta);
  }
}

/** Like Promise.all, but waits for every promise to settle before throwing the first failure. */
async function settledOrThrow<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

export interface SidecarAddresses {
  /** Absent in a worker (workers > 1): the primary serves the admin port. */
  readonly admin?: { host: string; port: number };
  readonly inbound?: { host: string; port: number };
  readonly outbound?: { host: string; port: number };
}

export interface SidecarOptions {
  /** The config file as the user named it. */
  readonly configFile?: string;
  /** workers > 1, in the primary: the workers carry the traffic; this process keeps identity and admin. */
  readonly cluster?: WorkerCluster;
  /** workers > 1, in a worker: the identity the primary hands over; no admin port here. */
  readonly identity?: () => Promise<RunningIdentity>;
}

export class Sidecar {
  private draining = false;
  private ready = false;
  private inbound: Inbound | undefined;
  private outbound: Outbound | undefined;
  private running: RunningIdentity | undefined;
  private admin: RunningAdmin | undefined;
  private addressesValue: SidecarAddresses | undefined;
  readonly startedAt = Date.now();
  /** Milliseconds from start() until ready, for logs and benchmarks. */
  readyAfterMs: number | undefined;

  readonly traffic: TrafficMetrics;
  /** Failed TLS handshakes in words: the rate-limited log line and GET /debug/tls (always on). */
  readonly tlsFailures: TlsFailureLog;
  private readonly observer: ForwardingObserver;
  /** The config really running: the file as loaded at start, with the live parts of every successful reload. */
  private current: SidecarConfig;
  /** The config file as the user named it, so reload messages read like `meshcar check`'s. */
  private readonly configFile: string;
  private starting: Promise<unknown> | undefined;
  /** The OpenAPI guards in force (for the discovery document's documented operations). */
  private guards: Guards = { inbound: undefined, upstreams: new Map() };
  /** Reloads run one after the other. */
  private reloads: Promise<unknown> = Promise.resolve();

  constructor(config: SidecarConfig, private readonly logger: Logger, readonly metrics = new Metrics(), private readonly options: SidecarOptions = {}) {
    this.current = config;
    this.configFile = options.configFile ?? config.file;
    const routesByUpstream = new Map((config.outbound?.upstreams ?? []).map((u) => [u.name, u.routes] as const));
    this.traffic = new TrafficMetrics(metrics, { routesByUpstream });
    this.tlsFailures = new TlsFailureLog(logger.child({ component: 'tls' }));
    // every method of the observer interface: the ones all observers have, and the optional
    // ones the request metrics implement
    const methods = new Set([...Object.keys(NO_OBSERVER), ...Object.getOwnPropertyNames(TrafficMetrics.prototype)]);
    this.observer = new ForwardingObserver(this.buildObservers(config), methods);
    for (const result of ['success', 'failure']) metrics.configReloads.labels(result).inc(0);
    // the CA's families (meshcar_ca_*) belong to the CA server; a sidecar exporting
    // meshcar_ca_certificates_issued_total 0 would only mislead dashboards and alerts
    for (const metric of metrics.registry.getMetricsAsArray()) {
      if (metric.name.startsWith('meshcar_ca_')) metrics.registry.removeSingleMetric(metric.name);
    }
  }

  /** The effective config (what /config shows). */
  get config(): SidecarConfig {
    return this.current;
  }

  /**
   * metrics.requests: false (the benchmark's "metrics off") leaves the traffic families out of
   * the hot path entirely; process, identity and build metrics are still exported.
   */
  private buildObservers(config: SidecarConfig): TrafficObserver[] {
    const observers: TrafficObserver[] = [this.tlsFailures];
    if (config.metrics.requests) observers.push(this.traffic);
    if (config.log.access) observers.push(new AccessLog(this.logger, config.metrics.requests ? (record) => this.traffic.routeOf(record) : undefined));
    return observers;
  }

  get addresses(): SidecarAddresses {
    if (!this.addressesValue) throw new Error('the sidecar has not started');
    return this.addressesValue;
  }

  start(): Promise<SidecarAddresses> {
    const started = this.startOnce();
    this.starting = started;
    return started;
  }

  private async startOnce(): Promise<SidecarAddresses> {
    const { config, logger } = this;
    const started = process.hrtime.bigint();
    // every OpenAPI spec loaded and compiled first: a broken one stops the start, with its place
    const guards = await loadGuards(config);
    this.guards = guards;
    const { cluster, identity: fromPrimary } = this.options;
    // admin first: /healthz answers and /ready says 503 while the identity is fetched
    if (!fromPrimary) {
      this.admin = await startAdminServer(config.admin.listen, this.adminState(), logger.child({ component: 'admin' }), { hosts: config.admin.hosts });
      // the bound address (port 0 picks one): /healthz and /ready answer from here on
      logger.info({ component: 'admin', address: { host: this.admin.host, port: this.admin.port } }, 'admin listening');
    }
    this.running = await (fromPrimary ? fromPrimary() : this.startIdentity());
    this.watchIdentityMetrics(this.running);

    const identity = this.running.identity;
    const [inbound, outbound] = cluster ? await cluster.start(identity).then((a) => [a.inbound, a.outbound]) : await this.listen(identity, guards);
    const admin = this.admin ? { admin: { host: this.admin.host, port: this.admin.port } } : {};
    this.addressesValue = { ...admin, ...(inbound ? { inbound } : {}), ...(outbound ? { outbound } : {}) };
    this.ready = true;
    this.readyAfterMs = Number(process.hrtime.bigint() - started) / 1e6;
    // a worker's own line: the primary says 'sidecar ready' once every worker listens
    logger.info({ spiffeId: config.spiffeId, ...this.addressesValue, readyAfterMs: Math.round(this.readyAfterMs) }, fromPrimary ? 'worker ready' : 'sidecar ready');
    return this.addressesValue;
  }

  /** Builds the inbound and outbound sides in this process and binds them. */
  private async listen(identity: WorkloadIdentity, guards: Guards) {
    const { config, logger } = this;
    if (config.inbound) {
      this.inbound = createInbound({ config: config.inbound, identity, trustDomain: config.trustDomain, ownSpiffeId: config.spiffeId, logger: logger.child({ component: 'inbound' }), observer: this.observer.asObserver(), codec: config.http2.codec, ...(guards.inbound ? { schema: guards.inbound } : {}) });
    }
    if (config.outbound) {
      const tuning = config.outbound.dnsRefreshMs !== undefined ? { options: { dnsRefreshMs: config.outbound.dnsRefreshMs } } : {};
      this.outbound = createOutbound({ config: config.outbound, identity, logger: logger.child({ component: 'outbound' }), observer: this.observer.asObserver(), codec: config.http2.codec, schemas: guards.upstreams, ...tuning });
    }
    // both settle before a failure is thrown: nothing logs "listening" after the fatal error
    return settledOrThrow([this.inbound?.listen(), this.outbound?.listen()]);
  }

  private startIdentity(): Promise<RunningIdentity> {
    const { identity, spiffeId, trustDomain } = this.config;
    const logger = this.logger.child({ component: 'identity' });
    if (identity.source === 'files') return identityFromFiles({ spiffeId, files: identity.files, logger });
    return obtainIdentity({
      spiffeId,
      trustDomain,
      dir: identity.dir,
      ca: { url: identity.ca.url, bundlePath: identity.ca.bundle, tokenPath: identity.ca.token, bundleRefreshMs: identity.ca.bundleRefreshMs },
      ttlMs: identity.ttlMs,
      renewal: identity.renewal,
      logger,
    });
  }

  private watchIdentityMetrics(running: RunningIdentity): void {
    const { identityCertExpiry, identityRenewals, identityBundleRoots } = this.metrics;
    const expiry = identityCertExpiry.labels(running.identity.spiffeId);
    const show = (svid: Svid) => {
      expiry.set(svid.notAfter.getTime() / 1000);
      identityBundleRoots.set(rootCount(svid));
    };
    show(running.identity.current());
    running.identity.on('rotated', show);
    running.identity.on('renewal', (event) => identityRenewals.labels(event.result).inc());
  }

  private adminState() {
    return {
      // workers > 1: every worker listens (a restarted one is waited for)
      ready: () => this.ready && (this.options.cluster?.listening() ?? true),
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
      config: () => redactConfig(effectiveYamlView(this.current)),
      reload: async () => {
        const result = await this.reload();
        if (!result.ok) throw new MeshcarError('config_invalid', result.messages.join('\n'));
        return { applied: result.applied, restartRequired: result.restartRequired };
      },
      metrics: (accept: string | undefined) => this.options.cluster?.metrics(accept) ?? this.metrics.renderFor(accept),
      views: {
        '/endpoints': (query: URLSearchParams) => this.endpointsView(query.get('format')),
        '/debug/tls': () => ({ failures: this.tlsFailures.recent() }),
        ...(this.options.cluster ? { '/workers': () => this.options.cluster?.status() } : {}),
      },
    };
  }

  /** GET /endpoints: the inventory as JSON rows, or (?format=openapi) as an OpenAPI 3.1 document. */
  private async endpointsView(format: string | null): Promise<unknown> {
    // workers > 1: the traffic was seen by the workers; their inventories are merged
    const { cluster } = this.options;
    if (format === null || format === 'json') return { endpoints: cluster ? (await cluster.endpoints()).endpoints : this.traffic.endpoints() };
    if (format !== 'openapi') throw new MeshcarError('bad_request', `unknown format ${JSON.stringify(format)}: use format=openapi, or leave it out for JSON rows`);
    const operations = (guard: Guards['inbound']) => guard?.spec.operations.map((op) => ({ method: op.method, template: op.template }));
    const upstreams = new Map([...this.guards.upstreams].map(([name, guard]) => [name, operations(guard) ?? []] as const));
    const inbound = operations(this.guards.inbound);
    const rows = cluster ? (await cluster.endpoints()).discovery : this.traffic.discoveryRows();
    return discoveryDocument(this.config.service, rows, { ...(inbound ? { inbound } : {}), upstreams });
  }

  /**
   * Re-reads the config file (SIGHUP, POST /reload). An invalid file changes nothing: its
   * issues are logged one per line, as `meshcar check` prints them. A valid one applies the
   * live parts (admin.hosts, inbound.authorize, inbound.rateLimit, outbound.upstreams, log.level, log.access, metrics.requests, drainTimeout) to new
   * requests; requests in flight and open sessions are untouched. Every other change is logged
   * as needing a restart and keeps its running value. Two reloads never run at once.
   */
  reload(): Promise<ReloadResult> {
    const run = this.reloads.then(() => this.reloadOnce());
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async reloadOnce(): Promise<ReloadResult> {
    // a reload asked for while starting applies to what start() built
    await this.starting?.catch(() => undefined);
    const log = this.logger.child({ component: 'reload' });
    let next: SidecarConfig;
    try {
      next = await loadSidecarConfig(this.configFile);
    } catch (err) {
      const messages = err instanceof ConfigError && err.issues.length > 0 ? err.issues.map(formatIssue) : [`${this.configFile}: ${describeError(err)}`];
      for (const message of messages) log.error(message);
      log.error({ file: this.configFile, issues: messages.length }, 'config reload failed; the running config is kept');
      this.metrics.configReloads.labels('failure').inc();
      return { ok: false, messages };
    }
    const plan = planReload(this.current, next);
    // the specs are read again on every reload (a spec file may change while the config does
    // not); one that fails keeps the whole running config, specs included
    let guards: Guards;
    try {
      guards = await loadGuards(plan.effective);
    } catch (err) {
      const messages = [`${this.configFile}: ${describeError(err)}`];
      log.error(messages[0]);
      log.error({ file: this.configFile, issues: 1 }, 'config reload failed; the running config is kept');
      this.metrics.configReloads.labels('failure').inc();
      return { ok: false, messages };
    }
    // workers > 1: the file checked here is applied by every worker; one that refuses it keeps the old config everywhere
    const workers = await this.options.cluster?.reload();
    if (workers && !workers.ok) {
      for (const message of workers.messages) log.error(message);
      log.error({ file: this.configFile, issues: workers.messages.length }, 'config reload failed; the running config is kept');
      this.metrics.configReloads.labels('failure').inc();
      return workers;
    }
    try {
      if (plan.applied.includes('inbound.authorize')) this.inbound?.setAuthorization(plan.effective.inbound?.authorize);
      if (plan.applied.some((path) => path.startsWith('inbound.rateLimit'))) this.inbound?.setRateLimit(plan.effective.inbound?.rateLimit);
      const timeouts = plan.effective.inbound;
      if (timeouts && plan.applied.some((path) => /^inbound\.(timeout|idleTimeout|routes)\b/.test(path))) {
        this.inbound?.setTimeouts({ timeoutMs: timeouts.timeoutMs, idleTimeoutMs: timeouts.idleTimeoutMs, routes: timeouts.routes });
      }
    } catch (err) {
      const messages = [`${this.configFile}: inbound.authorize: ${describeError(err)}`];
      log.error(messages[0]);
      this.metrics.configReloads.labels('failure').inc();
      return { ok: false, messages };
    }
    if (this.outbound && plan.effective.outbound && plan.applied.some((path) => path.startsWith('outbound.upstreams'))) {
      const upstreams = plan.effective.outbound.upstreams;
      for (const name of new Set([...(this.current.outbound?.upstreams ?? []).map((u) => u.name), ...upstreams.map((u) => u.name)])) {
        this.traffic.setRoutes(name, upstreams.find((u) => u.name === name)?.routes);
      }
      this.outbound.setUpstreams(upstreams);
    }
    this.guards = guards;
    this.inbound?.setSchema(guards.inbound);
    this.outbound?.setSchemas(guards.upstreams);
    if (plan.applied.includes('admin.hosts')) this.admin?.setHosts(plan.effective.admin.hosts);
    if (plan.effective.log.level !== this.current.log.level) this.logger.level = plan.effective.log.level;
    if (plan.effective.log.access !== this.current.log.access || plan.effective.metrics.requests !== this.current.metrics.requests) {
      this.observer.swap(this.buildObservers(plan.effective));
    }
    this.current = plan.effective;
    for (const path of plan.restartRequired) log.warn({ keyPath: path }, `${path} changed: needs a restart to take effect; the running value is kept`);
    log.info({ file: this.configFile, applied: plan.applied, restartRequired: plan.restartRequired }, 'config reloaded');
    this.metrics.configReloads.labels('success').inc();
    return { ok: true, applied: plan.applied, restartRequired: plan.restartRequired };
  }

  /**
   * Graceful shutdown: /ready turns 503; inbound stops accepting and finishes what is in
   * flight; outbound keeps serving the app (which may be shutting down too and still need its
   * calls) until it has been quiet for a moment; everything is bounded by the drain timeout.
   */
  async drain(timeoutMs = this.current.drainTimeoutMs): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    this.logger.info({ timeoutMs }, 'draining');
    await this.options.cluster?.drain(timeoutMs);
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
    await Promise.all([this.inbound?.close(), this.outbound?.close(), this.options.cluster?.close()]);
    await this.admin?.close();
    this.logger.info('stopped');
  }
}

// The composition root: the only module that sees the whole config. It builds each part from
// its own slice (identity → listeners → ready), wires metrics and logs in, applies a reloaded
// config to the parts that can change live, and runs the shutdown sequence (drain inbound,
// keep outbound serving the app, then stop: the order is in sidecar-drain.ts). A reload's
// parts: how requests for one are queued (reload-queue.ts), how the file is read and checked
// (reload-read.ts), what it changes in the live parts (reload-apply.ts), how its outcome is
// told (reload-outcome.ts). Its options and addresses are typed in sidecar-options.ts; what
// the admin server reads of it is put together in sidecar-admin.ts; how the inbound and
// outbound sides are made from their slices, in sidecar-sides.ts.

import type { Logger } from 'pino';
import type { SidecarConfig } from './config/sidecar-config.js';
import { planReload, type ReloadPlan } from './config/reload-plan.js';
import { logConfigWarnings } from './config/config-warnings.js';
import { describeError } from './errors.js';
import type { RunningIdentity } from './identity/bootstrap.js';
import { IdentityStart, startIdentity, watchIdentityMetrics } from './identity/sidecar-identity.js';
import { refuseIdentityDir } from './config/identity-dir-guard.js';
import type { WorkloadIdentity } from './identity/workload-identity.js';
import { Metrics } from './metrics/registry.js';
import { sidecarFamilies } from './metrics/sidecar-families.js';
import { LiveObservers } from './metrics/live-observers.js';
import { TlsFailureLog } from './tls-failures/failure-log.js';
import { TrafficMetrics } from './metrics/traffic-metrics.js';
import { trafficFamilyNames } from './metrics/traffic-families.js';
import { startAdminServer, type AdminState, type RunningAdmin } from './admin/server.js';
import type { Inbound } from './inbound/index.js';
import type { Outbound, UpstreamView } from './outbound/index.js';
import { inboundSide, outboundSide } from './sidecar-sides.js';
import { guardsFromDocuments, loadGuards, namesSpecs, specDocuments, warnBacktrackingPatterns, type Guards, type SpecDocuments } from './schema/guards.js';
import { appliedWithSpecs } from './schema/spec-changes.js';
import { carryBudgets } from './schema/budget-carry.js';
import { reportAborted, reportApplied, reportNotRun, reportNotRunWhileDraining, reportPartial, reportRefused, type ReloadResult } from './reload-outcome.js';
import { ReloadQueue } from './reload-queue.js';
import { applyLiveReload, checkLiveReload, observerSettings } from './reload-apply.js';
import { nextStartProblems, readReload } from './reload-read.js';
import type { SidecarAddresses, SidecarOptions } from './sidecar-options.js';
import { drainInOrder } from './sidecar-drain.js';
import { sidecarAdminState } from './sidecar-admin.js';
import { boundAt } from './workers/shared-ports.js';
import { releaseCompilers } from './compiler-tiers.js';

export type { SidecarAddresses, SidecarOptions } from './sidecar-options.js';

export class Sidecar {
  private draining = false;
  private ready = false;
  private inbound: Inbound | undefined;
  private outbound: Outbound | undefined;
  private running: RunningIdentity | undefined;
  private readonly identityStart = new IdentityStart();
  private admin: RunningAdmin | undefined;
  private addressesValue: SidecarAddresses | undefined;
  readonly startedAt = Date.now();
  /** Milliseconds from start() until ready, for logs and benchmarks. */
  readyAfterMs: number | undefined;

  readonly traffic: TrafficMetrics;
  /** Failed TLS handshakes in words: the rate-limited log line and GET /debug/tls (always on). */
  readonly tlsFailures: TlsFailureLog;
  private readonly observers: LiveObservers;
  /** The config really running: the file as loaded at start, with the live parts of every successful reload. */
  private current: SidecarConfig;
  /** The config file as the user named it, so reload messages read like `meshcar check`'s. */
  private readonly configFile: string;
  private starting: Promise<unknown> | undefined;
  /** Set by stop(): a start still under way ends at its next step, and its waits for the CA end at once. */
  private stopped = false;
  private readonly startAbort = new AbortController();
  /** The OpenAPI guards in force (for the discovery document's documented operations). */
  private guards: Guards = { inbound: undefined, upstreams: new Map() };
  /** Reloads one at a time, requests meanwhile sharing the next one (see reload()). */
  private readonly reloads: ReloadQueue;

  constructor(config: SidecarConfig, private readonly logger: Logger, readonly metrics = new Metrics(), private readonly options: SidecarOptions = {}) {
    this.current = config;
    this.configFile = options.configFile ?? config.file;
    const routesByUpstream = new Map((config.outbound?.upstreams ?? []).map((u) => [u.name, u.routes] as const));
    this.traffic = new TrafficMetrics(metrics, { routesByUpstream });
    this.tlsFailures = new TlsFailureLog(logger.child({ component: 'tls' }));
    this.observers = new LiveObservers({ tlsFailures: this.tlsFailures, traffic: this.traffic, logger }, observerSettings(config));
    this.reloads = new ReloadQueue(() => this.reloadOnce(), logger);
    sidecarFamilies(metrics);
  }

  /** The effective config (what /config shows). */
  get config(): SidecarConfig {
    return this.current;
  }

  /** GET /upstreams in this process: the outbound's upstreams as they are now (none without an outbound side). */
  upstreams(): UpstreamView[] {
    return this.outbound?.upstreams() ?? [];
  }

  /** Requests this process finished since start (GET /workers), counted with or without metrics.requests. */
  get finishedRequests(): number {
    return this.observers.finishedRequests;
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
    const { cluster, identity: fromPrimary, specs } = this.options;
    // compiling a spec is work (2,000 operations took a third longer in the interpreter)
    if (namesSpecs(config)) releaseCompilers();
    const guards = specs ? await guardsFromDocuments(config, specs) : await loadGuards(config);
    if (!specs) warnBacktrackingPatterns(guards, logger.child({ component: 'openapi' }));
    if (!fromPrimary) logConfigWarnings(config, this.configFile, logger);
    // before anything listens or the CA is asked (a single-use token would be spent first)
    if (!fromPrimary && config.identity.source === 'ca') refuseIdentityDir(config.identity.dir);
    this.guards = guards;
    await this.unlessStopped();
    // admin first: /healthz answers and /ready says 503 while the identity is fetched
    if (!fromPrimary) {
      const admin = await startAdminServer(config.admin.listen, this.adminState(), logger.child({ component: 'admin' }), { hosts: config.admin.hosts });
      await this.unlessStopped(() => admin.close());
      this.admin = admin;
      // the bound address (port 0 picks one): /healthz and /ready answer from here on
      logger.info({ component: 'admin', address: { host: admin.host, port: admin.port } }, 'admin listening');
    }
    const running = await (fromPrimary ? fromPrimary() : startIdentity(config.identity, config.spiffeId, config.trustDomain, logger.child({ component: 'identity' }), this.metrics, this.startAbort.signal, this.identityStart));
    await this.unlessStopped(() => running.stop());
    this.running = running;
    watchIdentityMetrics(this.metrics, running);

    const identity = running.identity;
    const [inbound, outbound] = cluster ? await cluster.start(identity, { config, specs: specDocuments(guards) }).then((a) => [a.inbound, a.outbound]) : await this.listen(identity, guards);
    // stop() closed whatever had been built by then (the listeners are built before they bind)
    await this.unlessStopped();
    const admin = this.admin ? { admin: { host: this.admin.host, port: this.admin.port } } : {};
    this.addressesValue = { ...admin, ...(inbound ? { inbound } : {}), ...(outbound ? { outbound } : {}) };
    this.ready = true;
    releaseCompilers(); // held while starting (cli.ts): traffic comes from now on
    this.readyAfterMs = Number(process.hrtime.bigint() - started) / 1e6;
    // a worker's own line: the primary says 'sidecar ready' once every worker listens
    logger.info({ spiffeId: config.spiffeId, ...this.addressesValue, readyAfterMs: Math.round(this.readyAfterMs) }, fromPrimary ? 'worker ready' : 'sidecar ready');
    return this.addressesValue;
  }

  /**
   * A start that stop() overtook goes no further: what the step just built (`undo`) is let go,
   * since stop() ran before it existed, and the start rejects with the reason stop() gave.
   */
  private async unlessStopped(undo?: () => unknown): Promise<void> {
    if (!this.stopped) return;
    await undo?.();
    throw this.startAbort.signal.reason;
  }

  /** Builds the inbound and outbound sides in this process and binds them. */
  private async listen(identity: WorkloadIdentity, guards: Guards) {
    const { config, logger } = this;
    // one after the other: an outbound that fails to build leaves the inbound for stop() to close
    // a worker binds the port the primary picked where the config says 0 (the config keeps 0)
    const ports = this.options.listenPorts ?? {};
    if (config.inbound) this.inbound = inboundSide(config, { ...config.inbound, listen: boundAt(config.inbound.listen, ports.inbound) }, identity, guards, logger, this.observers.observer, this.options.workers);
    if (config.outbound) this.outbound = outboundSide(config, { ...config.outbound, listen: boundAt(config.outbound.listen, ports.outbound) }, identity, guards, logger, this.observers.observer);
    // the outbound first (its listen may wait up to 2 s for an upstream's first DNS answer), the
    // inbound once it is bound: callers reach the inbound as soon as it listens, and a SIGTERM
    // before the start is over stops (cuts) rather than drains; bound side by side, a request the
    // inbound took while the outbound waited for DNS was cut, the app having run it. A side that
    // fails leaves the other unbound: nothing logs "listening" after the fatal error
    const outbound = await this.outbound?.listen();
    const inbound = await this.inbound?.listen();
    return [inbound, outbound] as const;
  }

  private adminState(): AdminState {
    return sidecarAdminState({
      ready: () => this.ready,
      draining: () => this.draining,
      identity: () => this.running,
      config: () => this.current,
      identityStart: this.identityStart,
      reload: () => this.reload(),
      metrics: this.metrics,
      traffic: this.traffic,
      guards: () => this.guards,
      tlsFailures: this.tlsFailures,
      upstreams: () => this.upstreams(),
      ...(this.options.cluster ? { cluster: this.options.cluster } : {}),
    });
  }

  /**
   * Re-reads the config file (SIGHUP, POST /reload). An invalid file changes nothing: its
   * issues are logged one per line, as `meshcar check` prints them. A valid one applies the
   * live parts (admin.hosts, inbound.authorize, inbound.rateLimit, outbound.upstreams, log.level, log.access, metrics.requests, drainTimeout) to new
   * requests; requests in flight and open sessions are untouched. Every other change is logged
   * as needing a restart and keeps its running value, except a change of trustDomain or service:
   * that file is refused whole (IDENTITY_KEYS). Two reloads never run at once, and requests
   * never pile up: one that comes while a reload runs shares the next one (reload-queue.ts).
   */
  reload(): Promise<ReloadResult> {
    return this.reloads.next();
  }

  private async reloadOnce(): Promise<ReloadResult> {
    // a reload asked for while starting applies to what start() built
    const startFailed = await this.starting?.then(() => false, () => true);
    // a failed start or a stop left nothing to apply to (run, it answered 200 after "could not start")
    if (startFailed || this.stopped) return reportNotRun(this.logger, startFailed ? 'the sidecar did not start' : 'the sidecar has stopped');
    // shutting down: what a reload would change (new requests, new sessions) no longer comes,
    // and with workers > 1 the draining workers could not take part (a round under way when the
    // drain starts is told the same way: src/workers/reload-round.ts)
    if (this.draining) return reportNotRunWhileDraining(this.logger, ['the sidecar is draining (shutting down): the reload is not run']);
    const report = this.reportTo();
    // the file read, planned against the running config, its specs read again (reload-read.ts)
    const readStarted = performance.now();
    const read = await readReload(this.configFile, () => this.current);
    if ('refused' in read) return reportRefused(report, read.refused, read.aborted);
    const { plan, next, guards, waitedMs } = read;
    // authorization switched off: meant, or a file cut short (reload-read.ts); either way said
    if (this.current.inbound?.authorize !== undefined && next.inbound !== undefined && next.inbound.authorize === undefined) {
      this.logger.warn({ file: this.configFile }, 'this reload removes inbound.authorize: every caller of the trust domain may call now');
    }
    warnBacktrackingPatterns(guards, this.logger.child({ component: 'openapi' }));
    logConfigWarnings(next, this.configFile, this.logger);
    // a spec file changed under an unchanged key is applied too, and named (spec-changes.ts)
    const applied = appliedWithSpecs(plan.applied, this.guards, guards);
    let commit: () => void;
    try {
      commit = this.prepare(plan, guards);
    } catch (err) {
      return reportRefused(report, [`${this.configFile}: ${describeError(err)}`]);
    }
    // workers > 1: they run exactly what was read and checked here (the file is read once),
    // all of them or none (src/workers/reload-round.ts); the primary's view follows the outcome
    // what this took here bounds what it may take each worker (src/workers/prepare-deadline.ts)
    const round = await this.options.cluster?.reload({ config: plan.effective, specs: specDocuments(guards) }, performance.now() - readStarted - waitedMs);
    // the stop overtook the round: told as one process tells a reload during its drain (a
    // warning, not a failed reload), with what the workers said
    if (round?.outcome === 'aborted' && round.stopping) return reportNotRunWhileDraining(this.logger, round.messages);
    if (round?.outcome === 'aborted') return reportAborted(report, round.messages, round.generation);
    // one process: a drain that began while the file and its specs were read is not changed
    // under it (its log level, its limits), as a round under way is aborted for workers
    if (round === undefined && this.draining) return reportNotRunWhileDraining(this.logger, ['the sidecar began draining (shutting down) while the reload was read: it is not applied']);
    commit();
    if (round?.outcome === 'partial') return reportPartial(report, round.messages, round.generation, round.stopping === true);
    return reportApplied(report, applied, plan.restartRequired, await nextStartProblems(this.configFile, plan, next));
  }

  /**
   * workers > 1, in a worker: phase one of a reload the primary checked (`config` is its
   * effective config, `specs` the documents it loaded): builds everything, applies nothing. The
   * returned function is phase two: it applies it (it cannot fail) and reports it.
   */
  async prepareFromPrimary(config: SidecarConfig, specs: SpecDocuments): Promise<() => ReloadResult> {
    await this.starting?.catch(() => undefined);
    const plan = planReload(this.current, config);
    const guards = await guardsFromDocuments(plan.effective, specs);
    const applied = appliedWithSpecs(plan.applied, this.guards, guards);
    const commit = this.prepare(plan, guards);
    return () => {
      commit();
      return reportApplied(this.reportTo(), applied, plan.restartRequired);
    };
  }

  private reportTo() {
    return { log: this.logger.child({ component: 'reload' }), file: this.configFile, metrics: this.metrics };
  }

  /** Throws now what applying `plan` could fail on (nothing changed then); the returned function applies it and cannot fail (reload-apply.ts). */
  private prepare(plan: ReloadPlan, guards: Guards): () => void {
    checkLiveReload(plan);
    return () => {
      // the parts as they are when it applies, and the config in force until then
      const parts = { inbound: this.inbound, outbound: this.outbound, admin: this.admin, traffic: this.traffic, observers: this.observers, logger: this.logger };
      // the new checks go on with the running ones' body budgets: bodies in flight still count
      const carried = carryBudgets(this.guards, guards);
      applyLiveReload(parts, this.current, plan, carried);
      // workers > 1: each worker empties its request families; the primary, what dead ones counted
      if (this.current.metrics.requests && !plan.effective.metrics.requests) this.options.cluster?.forgetRequestCounts(trafficFamilyNames(this.metrics));
      this.guards = carried;
      this.current = plan.effective;
    };
  }

  /**
   * Graceful shutdown: /ready turns 503; inbound stops accepting and finishes what is in
   * flight; outbound keeps serving the app (which may be shutting down too and still need its
   * calls) until it has been quiet for a moment; everything is bounded by the drain timeout
   * (the order: sidecar-drain.ts). Then stop().
   */
  async drain(timeoutMs = this.current.drainTimeoutMs): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await drainInOrder({ cluster: this.options.cluster, inbound: () => this.inbound, outbound: () => this.outbound }, timeoutMs, this.logger);
    await this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.startAbort.abort(new Error('the sidecar stopped before it had started'));
    this.ready = false;
    this.running?.stop();
    await Promise.all([this.inbound?.close(), this.outbound?.close(), this.options.cluster?.close()]);
    await this.admin?.close();
    this.logger.info('stopped');
  }
}

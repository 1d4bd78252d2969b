// The primary of a sidecar with workers > 1: forks the workers (node:cluster, which shares
// their listening sockets), hands each the SVID at start and on every rotation, knows which
// ones listen, restarts one that dies unexpectedly or is killed for missing its health checks
// (bounded: worker-restarts.ts, replacements.ts, restart-policy.ts; health-checks.ts; a
// connection handed to a worker that never took it is closed at its exit,
// untaken-connections.ts), reloads them
// (reload-round.ts) or drains them (a worker forked meanwhile is told to at its hello; the
// bounded wait for their exits is worker-exits.ts). What the admin server shows of them
// (metrics, inventories, status) is gathered in cluster-views.ts. It holds the config the
// workers run (numbered by generation) without reading it: the composition root
// (src/sidecar.ts) checks it and hands it over; each worker gets it at start, never the file.
// What it knows of the workers and of its run is declared in primary-books.ts.

import { performance } from 'node:perf_hooks';
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type client from 'prom-client';
import { describeError, MeshcarError } from '../errors.js';
import { isErrorCode } from '../http/status.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TlsFailureEntry } from '../tls-failures/failure-log.js';
import type { ConfigToRun, WorkerCluster } from './contract.js';
import { ClusterMetrics } from './cluster-metrics.js';
import { ClusterViews, VIEW_ASK_TIMEOUT_MS, type WorkerUpstreams } from './cluster-views.js';
import { isOurs, isToPrimary, svidMaterial, WORKER_COUNT_ENV, type Address, type ToPrimary, type ToWorker, type WorkerConfig, type WorkerEndpoints } from './messages.js';
import { PrimaryBooks, type Listening } from './primary-books.js';
import { reloadRound, type RoundOutcome } from './reload-round.js';
import { Asks } from './asks.js';
import { LogPerKey } from '../log-per-key.js';
import { DepartedCounts } from './departed-counts.js';
import { DRAIN_CHECK_INTERVAL_MS, HealthChecks, HELLO_TIMEOUT_MS } from './health-checks.js';
import type { KillCause } from './replacements.js';
import { WorkerRestarts } from './worker-restarts.js';
import { EXIT_GRACE_MS, ExitWaits, workerDrainTimeout } from './worker-exits.js';
import { closeUntakenConnections } from './untaken-connections.js';
import { describePrepareDeadline, prepareDeadlineMs } from './prepare-deadline.js';
import { workerCount } from './worker-count.js';
import { boundAt, pickSharedPorts, type ListenPorts } from './shared-ports.js';
import { PortKeeper } from './port-keeper.js';

// `workers: auto`: the cores this process may use, its cgroup CPU limit and MAX_WORKERS (worker-count.ts)
export { workerCount } from './worker-count.js';

export interface WorkerPoolOptions {
  /** How long /metrics, /endpoints and /workers wait for each worker (default 2 s). */
  readonly viewAskTimeoutMs?: number;
}

export class WorkerPool extends PrimaryBooks implements WorkerCluster {
  private readonly asks = new Asks(
    (worker, message) => this.send(worker, message),
    // said, not only counted as unresponsive: a worker whose registry outgrew the bound lost its
    // fresh counts from /metrics at every scrape with nothing in the log (the workers review)
    (worker, ask, why) => {
      if (this.refusedAnswers.take(`${worker.id} ${ask}`)) this.logger.warn({ worker: worker.id, workerPid: worker.process.pid, ask }, `worker ${worker.id}'s answer to ${ask} was refused (${why}): its last accepted answer stands in, and its counts since are missing from the page`);
    },
  );
  private readonly refusedAnswers = new LogPerKey(600_000);
  /** What dead workers counted, so the aggregated counts never go down. */
  private readonly departed = new DepartedCounts();
  /** What a worker's exit leads to (a replacement now, after a crash-loop delay, or a failed start): see worker-restarts.ts. */
  private readonly restarts: WorkerRestarts;
  private readonly malformed = new LogPerKey();
  private readonly metricsOf: ClusterMetrics;
  /** Holds the listen ports while no worker does (every worker dead at once, a crash loop): see port-keeper.ts. */
  private readonly keeper: PortKeeper;
  /** The drain's and close()'s bounded wait for the workers' exits: see worker-exits.ts. */
  private readonly exitWaits: ExitWaits;
  /** /metrics, /endpoints and /workers: see cluster-views.ts. */
  private readonly views: ClusterViews;

  private readonly viewAskTimeoutMs: number;
  /** Where the config says listen port 0, the port every worker binds instead (shared-ports.ts). */
  private ports: ListenPorts = {};
  /** Workers kept as late at a reload's prepare, with that round's number: late at the next one too, they are restarted (reload-round.ts). */
  private readonly lateAtPrepare = new Map<number, number>();
  /** Reload rounds run so far. */
  private rounds = 0;
  /** The cores the workers share (as `workers: auto` counts them), for the prepare's deadline. */
  private readonly cores = workerCount('auto');
  /** Replaces a worker that stops answering (stopped, stuck): see health-checks.ts. */
  private readonly health = new HealthChecks({
    // starting ones too: one stopped or stuck before it listened kept /ready at 503 for good
    // not one that drained and closed its channel: it is on its way out
    workers: () => this.greetedLive().filter((w) => w.isConnected()),
    unheard: () => this.live().filter((w) => !this.greeted.has(w.id) && performance.now() - (this.forkedAt.get(w.id) ?? performance.now()) >= HELLO_TIMEOUT_MS),
    ping: (worker) => this.asks.ask(worker, { ask: 'ping' }, this.stopping ? DRAIN_CHECK_INTERVAL_MS : this.viewAskTimeoutMs),
    // a round the drain overtakes is no pause: the drain checks on
    paused: () => !this.stopping && this.deciding !== undefined,
    stuck: (worker, why) => {
      if (this.stopping) {
        // no replacement: its in-flight requests are cut, and the connections handed to it
        // closed (untaken-connections.ts); one that never said hello had no config, served nothing
        const cut = this.greeted.has(worker.id) ? '; the requests it had in flight are cut' : '';
        this.logger.warn({ worker: worker.id, workerPid: worker.process.pid }, `killing worker ${worker.id} during the drain: ${why}${cut}`);
        return this.exitWaits.kill(worker);
      }
      // counted as a restart: the worker was lost without a reload asking for it
      this.metricsOf.restarts.inc();
      // and replaced as a crashed one is, within the crash-loop bound: a worker starved again and
      // again is not killed and re-forked every few seconds
      this.recycle(worker, why, 'health');
    },
  });

  constructor(private readonly count: number, private readonly logger: Logger, primaryRegistry: client.Registry, options: WorkerPoolOptions = {}) {
    super();
    this.viewAskTimeoutMs = options.viewAskTimeoutMs ?? VIEW_ASK_TIMEOUT_MS;
    this.exitWaits = new ExitWaits(() => this.live(), logger);
    this.metricsOf = new ClusterMetrics(primaryRegistry, () => this.live().length);
    this.keeper = new PortKeeper(logger, () => this.listenAddresses());
    this.restarts = new WorkerRestarts({
      logger,
      fork: () => this.fork(),
      generation: () => this.generation(),
      countRestart: () => this.metricsOf.restarts.inc(),
      startFailed: (err) => this.startFailed?.(err),
    });
    this.views = new ClusterViews(
      { live: () => this.live(), greetedLive: () => this.greetedLive(), listening: (id) => this.listeningWorkers.has(id), generation: () => this.generation(), pendingRestarts: () => this.restarts.pending() },
      this.asks,
      this.departed,
      this.metricsOf,
      this.viewAskTimeoutMs,
    );
  }

  async start(identity: WorkloadIdentity, config: ConfigToRun): Promise<Listening> {
    // a listen port 0 is picked here, once, and bound by number in every worker; the primary
    // holds it until the first worker asks for it (shared-ports.ts)
    const picked = await pickSharedPorts(config.config);
    this.ports = picked.ports;
    this.keeper.adopt(picked.held);
    // a stop (SIGTERM) that came during the pick found no worker to close: none is forked now,
    // and the sidecar's start ends with the stop's reason (sidecar.ts unlessStopped)
    if (this.stopping) return {};
    this.identity = identity;
    this.current = { generation: 1, ...config };
    identity.on('rotated', (svid) => this.broadcast({ type: 'meshcar:svid', svid: svidMaterial(svid) }));
    cluster.on('message', (worker, message: unknown) => {
      if (isToPrimary(message)) this.onMessage(worker, message);
      // a worker's bug: dropped (it was sent with the wrong fields), said once per worker per 10 s
      else if (isOurs(message) && this.malformed.take(String(worker.id))) this.logger.error({ worker: worker.id, workerPid: worker.process.pid, type: message.type }, 'a message from the worker without the fields its type has was dropped');
    });
    // node:cluster lets a worker's share of the listeners go at its channel's close, or at its
    // exit when that comes first: the keeper binds them in that same turn when none is left
    cluster.on('disconnect', (worker) => this.keeper.gone(worker));
    cluster.on('exit', (worker, code, signal) => {
      if (!worker.isConnected()) this.keeper.gone(worker);
      this.onExit(worker, code, signal);
    });
    const ready = new Promise<Listening>((resolve, reject) => {
      this.startFailed = reject;
      this.allListening = () => resolve(this.addresses ?? {});
    });
    for (let i = 0; i < this.count; i++) this.fork();
    this.health.start();
    this.logger.info({ workers: this.count }, `starting ${this.count} workers`);
    return await ready;
  }

  listening(): boolean {
    const live = this.live();
    return live.length === this.count && live.every((w) => this.listeningWorkers.has(w.id));
  }

  /**
   * `primaryMs`: what the primary took to read and prepare the same config, specs compiled; each
   * worker's prepare is given that times the workers' share of the cores, three times over, on
   * top of the asks' own bound (prepare-deadline.ts).
   */
  async reload(config: ConfigToRun, primaryMs = 0): Promise<RoundOutcome> {
    const next = { generation: this.generation() + 1, ...config };
    const primary = Math.round(primaryMs);
    const prepareMs = prepareDeadlineMs(primary, this.live().length, this.cores);
    // the pool's logger says component: workers already; a second component key made the line
    // a JSON document with a repeated field, which log stores refuse
    this.logger.info({ generation: next.generation, prepareMs, primaryMs: primary, cores: this.cores }, `asking the workers to prepare config generation ${next.generation}: each has ${prepareMs} ms (${describePrepareDeadline(primary)})`);
    let decided: () => void = () => undefined;
    this.deciding = new Promise<void>((resolve) => (decided = resolve));
    const adopt = (adopted: WorkerConfig) => {
      this.current = adopted;
      decided();
    };
    try {
      return await reloadRound(this.live().filter((w) => this.configured.has(w.id)), next, { ask: this.asks.ask.bind(this.asks), send: this.send.bind(this), recycle: this.recycle.bind(this), answersPing: (worker) => this.asks.ask(worker, { ask: 'ping' }, this.viewAskTimeoutMs).then(() => true, () => false), late: this.lateAtPrepare, round: ++this.rounds, adopt, stopping: () => this.stopping }, prepareMs);
    } finally {
      decided();
      this.deciding = undefined;
    }
  }

  metrics(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    return this.views.metrics(accept);
  }

  forgetRequestCounts(families: ReadonlySet<string>): void {
    this.departed.forget(families);
    this.metricsOf.forget(families);
  }

  endpoints(): Promise<WorkerEndpoints> {
    return this.views.endpoints();
  }

  status(): Promise<unknown> {
    return this.views.status();
  }

  tlsFailures(): Promise<TlsFailureEntry[]> {
    return this.views.tlsFailures();
  }

  upstreams(): Promise<WorkerUpstreams> {
    return this.views.upstreams();
  }

  /** Every worker runs its own drain (inbound first, then outbound); resolves when all have exited. */
  async drain(timeoutMs: number): Promise<void> {
    this.stopRestarting();
    // but the checks go on, faster: a stopped or stuck worker would keep the shared listener
    // open to the drain's end (see DRAIN_CHECK_INTERVAL_MS)
    this.health.hurry();
    // the workers drain in the budget less their exit grace and their drain's overrun (the cut
    // gRPC calls' statuses); the stragglers are killed at the budget's end
    const workerTimeoutMs = workerDrainTimeout(timeoutMs);
    this.drainTimeoutMs = workerTimeoutMs;
    // a worker that has not said hello cannot hear it yet: it is told at its hello
    for (const worker of this.live()) if (this.greeted.has(worker.id)) this.send(worker, { type: 'meshcar:drain', timeoutMs: workerTimeoutMs });
    await this.exitWaits.until(timeoutMs);
    this.health.stop();
  }

  async close(): Promise<void> {
    this.stopRestarting();
    for (const worker of this.live()) this.exitWaits.kill(worker);
    await this.exitWaits.until(EXIT_GRACE_MS);
  }

  private stopRestarting(): void {
    this.stopping = true;
    this.keeper.stop();
    this.health.stop();
    this.restarts.stop();
  }

  /** A worker whose state is unknown is replaced: SIGKILL works on a stopped or stuck process too. */
  private recycle(worker: Worker, reason: string, cause: KillCause = 'reload'): void {
    // stopping: a worker that drained has closed its channel (it answers nothing more) and is on
    // its way out; killing it cut its drain and no replacement comes. The drain's own wait kills
    // the ones still running at its end (worker-exits.ts)
    if (worker.isDead() || this.stopping) return;
    this.logger.warn({ worker: worker.id, workerPid: worker.process.pid }, `restarting worker ${worker.id}: ${reason}`);
    this.restarts.killing(worker.id, cause);
    // not ready from now on, not only once its exit is seen
    this.listeningWorkers.delete(worker.id);
    worker.process.kill('SIGKILL');
  }

  private fork(): void {
    // structured clone, not JSON, on the IPC channel: a spec's document keeps its shared $ref
    // targets shared (JSON copied each use: a 238 KB spec with one schema used everywhere went
    // to each worker as 11.7 MB), and a worker compiles the same objects the primary checked
    cluster.setupPrimary({ serialization: 'advanced' });
    // the worker runs this same command line; it tells itself apart by cluster.isWorker
    // how many there are: the app's connection limit is split among them (sidecar-sides.ts)
    const worker = cluster.fork({ [WORKER_COUNT_ENV]: String(this.count) });
    // the running clock: a wall clock stepped forward killed a replacement still loading as silent
    this.forkedAt.set(worker.id, performance.now());
    // a connection handed to it that it never takes (it dies, or is stopped and killed) is closed at its exit
    closeUntakenConnections(worker);
    // the ports the primary holds while no worker does are let go as this one asks for them
    this.keeper.watch(worker);
    this.logger.debug({ worker: worker.id, workerPid: worker.process.pid }, 'worker forked');
    // a message to a worker that has just died fails (EPIPE) before its channel is seen closed;
    // its exit is handled on its own: unheard, this 'error' event would end the primary
    worker.on('error', (err: Error) => this.logger.debug({ worker: worker.id, workerPid: worker.process.pid, err: describeError(err) }, 'a message to the worker failed'));
  }

  private onMessage(worker: Worker, message: ToPrimary): void {
    switch (message.type) {
      case 'meshcar:hello':
        // one per worker: each hello is answered with the SVID and the config (specs included),
        // so a worker repeating it in a loop (a bug) had the primary queue copies without bound
        if (this.greeted.has(worker.id)) return;
        this.greeted.add(worker.id);
        this.logger.debug({ worker: worker.id, workerPid: worker.process.pid }, 'worker said hello');
        // a worker forked just before a SIGTERM (a restart): it drains (exits) instead of starting
        if (this.drainTimeoutMs !== undefined) return this.send(worker, { type: 'meshcar:drain', timeoutMs: this.drainTimeoutMs });
        if (this.identity) this.send(worker, { type: 'meshcar:svid', svid: svidMaterial(this.identity.current()) });
        // during a reload round, the config it decides on (the old one if aborted, else the new)
        void (this.deciding ?? Promise.resolve()).then(() => {
          if (!this.current || worker.isDead()) return;
          if (this.drainTimeoutMs !== undefined) return this.send(worker, { type: 'meshcar:drain', timeoutMs: this.drainTimeoutMs });
          this.configured.add(worker.id);
          this.send(worker, { type: 'meshcar:config', current: this.current, ports: this.ports });
        });
        return;
      case 'meshcar:listening':
        return this.onListening(worker, { ...(message.inbound ? { inbound: message.inbound } : {}), ...(message.outbound ? { outbound: message.outbound } : {}) });
      case 'meshcar:failed':
        this.logger.error({ worker: worker.id, workerPid: worker.process.pid, code: message.code }, `worker could not start: ${message.message}`);
        // before the sidecar is ready this is the sidecar's failure to start
        // with the worker's code (listen_failed, identity_invalid...), as one process would fail
        if (!this.started) this.startFailed?.(new MeshcarError(isErrorCode(message.code) ? message.code : 'internal', message.message));
        return;
      case 'meshcar:answer':
        return this.asks.answered(worker, message);
    }
  }

  /**
   * The addresses the workers listen on, as the first listening one said; before any has, as
   * configured, with the ports picked for a port 0 (every worker gone before the first said
   * left the keeper nothing to hold).
   */
  private listenAddresses(): Address[] {
    if (this.addresses) return [this.addresses.inbound, this.addresses.outbound].filter((a) => a !== undefined);
    const config = this.current?.config;
    if (config === undefined) return [];
    return (['inbound', 'outbound'] as const).flatMap((side) => {
      const listen = config[side]?.listen;
      return listen ? [boundAt(listen, this.ports[side])] : [];
    });
  }

  private onListening(worker: Worker, addresses: Listening): void {
    this.listeningWorkers.set(worker.id, addresses);
    // node:cluster shares one socket per address among the workers (a port 0 was picked by
    // number before the fork, shared-ports.ts): every worker must report the same
    if (this.addresses && JSON.stringify(addresses) !== JSON.stringify(this.addresses)) {
      this.logger.error({ worker: worker.id, expected: this.addresses, got: addresses }, 'a worker listens on other addresses than the first one');
    }
    this.addresses ??= addresses;
    this.logger.info({ worker: worker.id, workerPid: worker.process.pid, ...addresses }, 'worker listening');
    if (!this.started && this.listening()) {
      this.started = true;
      this.allListening?.();
    }
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.listeningWorkers.delete(worker.id);
    this.greeted.delete(worker.id);
    this.forkedAt.delete(worker.id);
    this.configured.delete(worker.id);
    this.lateAtPrepare.delete(worker.id);
    this.asks.gone(worker.id);
    this.health.forget(worker.id);
    this.departed.departed(worker.id);
    this.exitWaits.exited(worker, code, signal);
    this.restarts.exited(worker, code, signal, this.started);
  }

  private send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }

  private broadcast(message: ToWorker): void {
    for (const worker of this.live()) this.send(worker, message);
  }
}


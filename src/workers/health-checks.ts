// The primary's health checks of its workers (workers > 1): every few seconds each listening
// worker is asked a ping over IPC, which a worker whose event loop turns answers at once. One
// that misses two checks in a row (stopped, or its loop stuck in a busy loop or a long page-in)
// is handed to `stuck`, which replaces it: until the next reload such a worker used to hold
// its share of the new connections (node:cluster keeps handing them to it) while /ready said 200.
// No per-request cost: one message per worker per interval. Paused during a reload round (a
// worker preparing a large OpenAPI spec may be busy for a while; the round has its own timeout).
// A worker is pinged from its hello on, starting or listening (it answers pings from the first
// moment, and a spec's compile yields to its event loop): one stopped or stuck while it started
// stayed "starting" and kept /ready at 503 for good. One that never says hello (stopped or stuck
// while it loads, before it can hear a ping) is stuck once HELLO_TIMEOUT_MS have passed.

import type { Worker } from 'node:cluster';

/** How often each worker is pinged. */
export const HEALTH_CHECK_INTERVAL_MS = 3_000;
/** Missed pings in a row that make a worker stuck: one slow moment (a GC pause, a big scrape) is not enough. */
export const MISSES_TO_REPLACE = 2;
/**
 * During the drain: how often each worker is pinged, and how long its answer is waited for. A
 * worker stopped or stuck then never closes its listeners, so node:cluster's shared listener
 * stayed open and kept handing it its share of the new connections, held unanswered until the
 * drain timeout; checked this often, it is killed within about 3 s (two misses). Still two
 * misses of 1 s each: a draining worker under load that lags a moment keeps its requests.
 */
export const DRAIN_CHECK_INTERVAL_MS = 1_000;
/** From its fork, how long a worker has to say hello: it does so once its code is loaded, before any work (well under a second). */
export const HELLO_TIMEOUT_MS = 10_000;

export interface HealthCheckDeps {
  /** The workers to ping now (the ones that said hello). */
  workers(): readonly Worker[];
  /** The workers forked more than HELLO_TIMEOUT_MS ago that have not said hello. */
  unheard(): readonly Worker[];
  /** Asks `worker` a ping; rejects when it did not answer in time. */
  ping(worker: Worker): Promise<unknown>;
  /** Checks are off (a reload round): misses are not counted. */
  paused(): boolean;
  /** `worker` missed MISSES_TO_REPLACE checks in a row, or never said hello: `why` says which. */
  stuck(worker: Worker, why: string): void;
}

export class HealthChecks {
  private readonly misses = new Map<number, number>();
  private readonly inFlight = new Set<number>();
  /** Workers handed to `stuck`: once each (it is killed; its exit comes a moment later). */
  private readonly handedOver = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by hurry(): a ping sent before counts no miss after. */
  private stage = 0;

  constructor(private readonly deps: HealthCheckDeps, private readonly intervalMs = HEALTH_CHECK_INTERVAL_MS) {}

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.intervalMs);
  }

  /** The drain: a check now, then every DRAIN_CHECK_INTERVAL_MS (see there). */
  hurry(): void {
    clearInterval(this.timer);
    // two misses of the drain's own: one missed with 2 s to answer just before the SIGTERM and
    // one of 1 s at its start killed a worker that only lagged twice (a scrape, a GC pause);
    // a normal ping still unanswered now counts nothing when it fails (its stage is over)
    this.misses.clear();
    this.stage++;
    this.timer = setInterval(() => this.round(), DRAIN_CHECK_INTERVAL_MS);
    this.round();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The worker exited: its count starts over with its replacement (a new id). */
  forget(worker: number): void {
    this.misses.delete(worker);
    this.handedOver.delete(worker);
  }

  private round(): void {
    if (this.deps.paused()) {
      this.misses.clear();
      return;
    }
    for (const worker of this.deps.unheard()) this.handOver(worker, `it did not say hello within ${HELLO_TIMEOUT_MS / 1000} s of its start (stopped or stuck)`);
    for (const worker of this.deps.workers()) {
      // a ping not answered yet is this check's miss already (or answers late): one at a time
      if (this.inFlight.has(worker.id)) continue;
      this.inFlight.add(worker.id);
      const stage = this.stage;
      this.deps.ping(worker).then(
        () => this.misses.delete(worker.id),
        () => {
          // one that drained has closed its channel on its way out: no miss
          if (worker.isDead() || !worker.isConnected() || this.deps.paused() || stage !== this.stage) return;
          const misses = (this.misses.get(worker.id) ?? 0) + 1;
          this.misses.set(worker.id, misses);
          if (misses < MISSES_TO_REPLACE) return;
          this.misses.delete(worker.id);
          this.handOver(worker, `it did not answer ${misses} health checks in a row (stopped or stuck)`);
        },
      ).finally(() => this.inFlight.delete(worker.id));
    }
  }

  private handOver(worker: Worker, why: string): void {
    if (this.handedOver.has(worker.id)) return;
    this.handedOver.add(worker.id);
    this.deps.stuck(worker, why);
  }
}

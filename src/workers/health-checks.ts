// The primary's health checks of its workers (workers > 1): every few seconds each listening
// worker is asked a ping over IPC, which a worker whose event loop turns answers at once. One
// that misses two checks in a row (stopped, or its loop stuck in a busy loop or a long page-in)
// is handed to `stuck`, which replaces it: until the next reload such a worker used to hold
// its share of the new connections (node:cluster keeps handing them to it) while /ready said 200.
// No per-request cost: one message per worker per interval. Paused during a reload round (a
// worker preparing a large OpenAPI spec may be busy for a while; the round has its own timeout).

import type { Worker } from 'node:cluster';

/** How often each worker is pinged. */
export const HEALTH_CHECK_INTERVAL_MS = 3_000;
/** Missed pings in a row that make a worker stuck: one slow moment (a GC pause, a big scrape) is not enough. */
export const MISSES_TO_REPLACE = 2;

export interface HealthCheckDeps {
  /** The workers to check now (the ones listening). */
  workers(): readonly Worker[];
  /** Asks `worker` a ping; rejects when it did not answer in time. */
  ping(worker: Worker): Promise<unknown>;
  /** Checks are off (a reload round, the drain): misses are not counted. */
  paused(): boolean;
  /** `worker` missed MISSES_TO_REPLACE checks in a row. */
  stuck(worker: Worker, misses: number): void;
}

export class HealthChecks {
  private readonly misses = new Map<number, number>();
  private readonly inFlight = new Set<number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: HealthCheckDeps, private readonly intervalMs = HEALTH_CHECK_INTERVAL_MS) {}

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The worker exited: its count starts over with its replacement (a new id). */
  forget(worker: number): void {
    this.misses.delete(worker);
  }

  private round(): void {
    if (this.deps.paused()) {
      this.misses.clear();
      return;
    }
    for (const worker of this.deps.workers()) {
      // a ping not answered yet is this check's miss already (or answers late): one at a time
      if (this.inFlight.has(worker.id)) continue;
      this.inFlight.add(worker.id);
      this.deps.ping(worker).then(
        () => this.misses.delete(worker.id),
        () => {
          if (worker.isDead() || this.deps.paused()) return;
          const misses = (this.misses.get(worker.id) ?? 0) + 1;
          this.misses.set(worker.id, misses);
          if (misses < MISSES_TO_REPLACE) return;
          this.misses.delete(worker.id);
          this.deps.stuck(worker, misses);
        },
      ).finally(() => this.inFlight.delete(worker.id));
    }
  }
}

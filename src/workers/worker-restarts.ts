// What the primary does when a worker exits (workers > 1): a worker it killed for a reload
// comes back at once on the config in force; one lost during start-up fails the start; one that
// crashed or was killed for missing its health checks is replaced, at once or, in a crash loop,
// after the delay replacements.ts and restart-policy.ts decide (GET /workers lists the waiting
// ones). Nothing is restarted once the primary stops.

import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { MeshcarError } from '../errors.js';
import type { PendingRestart } from './cluster-views.js';
import { Replacements, type KillCause } from './replacements.js';
import { WINDOW_MS } from './restart-policy.js';

export interface RestartIo {
  readonly logger: Logger;
  fork(): void;
  /** The config generation a replacement starts on (named in the log). */
  generation(): number;
  /** Counts a restart nobody asked for (meshcar_workers_restarts_total). */
  countRestart(): void;
  /** A worker lost before the sidecar was ready: the start fails. */
  startFailed(err: Error): void;
}

export class WorkerRestarts {
  /** Why each worker the primary kills is killed; when a dead worker's replacement starts (crash-loop bound). */
  private readonly replacements = new Replacements();
  /** Replacements waiting out the crash-loop delay: when each starts and why. */
  private readonly timers = new Map<NodeJS.Timeout, PendingRestart>();
  private stopped = false;

  constructor(private readonly io: RestartIo) {}

  /** The primary kills worker `id` for `cause`: its exit is no crash. */
  killing(id: number, cause: KillCause): void {
    this.replacements.kill(id, cause);
  }

  pending(): PendingRestart[] {
    return [...this.timers.values()];
  }

  /** The primary stops: no exit is replaced from now on, and the waiting replacements never start. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.keys()) clearTimeout(timer);
    this.timers.clear();
  }

  /** `worker` exited; `started`: the sidecar was ready (every worker listened) before. */
  exited(worker: Worker, code: number | null, signal: string | null, started: boolean): void {
    if (this.stopped) return;
    const { logger } = this.io;
    const how = signal ? { signal } : { code };
    const replacement = this.replacements.exited(worker.id, started);
    if (replacement.cause === 'reload') {
      logger.warn({ worker: worker.id, workerPid: worker.process.pid, generation: this.io.generation() }, `worker recycled; its replacement starts on config generation ${this.io.generation()}`);
      this.io.fork();
      return;
    }
    if (replacement.cause === 'start-up') {
      this.io.startFailed(new MeshcarError('internal', `worker ${worker.id} exited during start-up (${signal ? `signal ${signal}` : `exit code ${code}`})`));
      return;
    }
    // a health kill was counted when it was decided (primary.ts's health checks)
    if (replacement.cause === 'crash') this.io.countRestart();
    const what = replacement.cause === 'health' ? 'worker killed for missing its health checks' : 'worker exited unexpectedly';
    const delay = replacement.delayMs;
    if (delay === 0) {
      logger.warn({ worker: worker.id, workerPid: worker.process.pid, ...how }, `${what}; restarting it`);
      this.io.fork();
      return;
    }
    logger.error({ worker: worker.id, workerPid: worker.process.pid, ...how, restartInMs: delay }, `${what}; crash loop: ${this.replacements.policy.recent()} restarts in the last ${WINDOW_MS / 1000} s, the next one in ${Math.ceil(delay / 1000)} s`);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) this.io.fork();
    }, delay);
    this.timers.set(timer, { at: Date.now() + delay, cause: replacement.cause });
  }
}

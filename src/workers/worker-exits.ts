// The end of the workers' lives as the primary waits for it (workers > 1): how long a drained
// worker gets to exit, and the wait until no worker is alive, killing the ones still running
// when it is up (a stopped or stuck worker never exits by itself). Separate from primary.ts,
// which decides when to drain or close: this is only the bounded wait, so a shutdown always
// fits in its budget.

import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** After close()'s SIGKILL, how long the workers' exits are waited for. */
export const EXIT_GRACE_MS = 5_000;

/**
 * Of a drain timeout, the last part a worker has to exit in (close its IPC channel, flush its
 * last log lines) once its drain is over: a tenth, at most 1 s. A worker still alive at the
 * drain timeout (stopped, stuck) is killed then, so the whole shutdown fits in drainTimeout,
 * which is what terminationGracePeriodSeconds is sized from.
 */
export function workerExitGrace(timeoutMs: number): number {
  return Math.min(1_000, Math.floor(timeoutMs / 10));
}

export class ExitWaits {
  private readonly waiters = new Set<() => void>();

  constructor(
    /** The live workers. */
    private readonly live: () => Worker[],
    private readonly logger: Logger,
  ) {}

  /** A worker exited: each wait looks whether it was the last. */
  exited(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves once no worker is alive; kills the ones left after `withinMs`. */
  until(withinMs: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.live().length > 0) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const worker of this.live()) {
          this.logger.warn({ worker: worker.id, workerPid: worker.process.pid }, 'worker still running after the drain timeout; killing it');
          worker.process.kill('SIGKILL');
        }
      }, withinMs);
      this.waiters.add(check);
      check();
    });
  }
}

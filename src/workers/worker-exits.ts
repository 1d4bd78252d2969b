// The end of the workers' lives as the primary waits for it (workers > 1): the drain timeout a
// worker is told, how long a drained worker gets to exit, and the wait until no worker is
// alive, killing the ones still running when it is up (a stopped or stuck worker never exits
// by itself). Separate from primary.ts, which decides when to drain or close: this is only the
// bounded wait, so a shutdown always fits in its budget. A worker that dies otherwise during
// that wait (killed from outside, its drain failed) is said: the requests it had in flight were
// cut, and the primary still exits 0.

import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { GRPC_CUT_GRACE_MS } from '../http/grpc-drain-cut.js';

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

/**
 * The most a sidecar's drain runs past the timeout it is given: the inbound side, then the
 * outbound side, each gives the gRPC calls it cut at its timeout GRPC_CUT_GRACE_MS for their
 * statuses (drain-grpc.ts). One process may take that long past drainTimeout; a worker that did
 * ran into its exit grace (200 ms of a 2 s budget) and was killed at drainTimeout as stuck.
 */
export const DRAIN_OVERRUN_MS = 2 * GRPC_CUT_GRACE_MS;

/**
 * The drain timeout each worker is told: the budget less its exit grace and the overrun its
 * drain may add, so a worker that is not stopped or stuck has exited by the budget's end.
 */
export function workerDrainTimeout(timeoutMs: number): number {
  return Math.max(0, timeoutMs - workerExitGrace(timeoutMs) - DRAIN_OVERRUN_MS);
}

export class ExitWaits {
  private readonly waiters = new Set<() => void>();
  /** Workers this wait killed (or close() did): their end is no surprise. */
  private readonly killed = new Set<number>();

  constructor(
    /** The live workers. */
    private readonly live: () => Worker[],
    private readonly logger: Logger,
  ) {}

  /** A worker exited: each wait looks whether it was the last. */
  exited(worker: Worker, code: number | null, signal: string | null): void {
    // a drained worker exits 0; during a wait, any other end but our own kill cut its requests
    if (!this.killed.delete(worker.id) && this.waiters.size > 0 && (signal !== null || code !== 0)) {
      this.logger.warn({ worker: worker.id, workerPid: worker.process.pid, ...(signal ? { signal } : { code }) }, `worker exited during the drain (${signal ? `signal ${signal}` : `exit code ${code}`}); the requests it had in flight were cut`);
    }
    for (const waiter of this.waiters) waiter();
  }

  /** SIGKILL, known as ours: works on a stopped or stuck process too. */
  kill(worker: Worker): void {
    this.killed.add(worker.id);
    worker.process.kill('SIGKILL');
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
          this.kill(worker);
        }
      }, withinMs);
      this.waiters.add(check);
      check();
    });
  }
}

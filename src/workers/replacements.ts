// How a dead worker is replaced, by why it died. One the primary killed for a reload it did not
// confirm (reload-round.ts) was restarted on purpose: its replacement is forked at once. One
// that crashed, or that the primary killed for missing its health checks (health-checks.ts),
// was lost: its replacement goes through the crash-loop bound (restart-policy.ts), so a worker
// starved or wedged again and again is not killed and re-forked every few seconds for ever. A
// crash before the sidecar was ready is its failure to start, not restarted.

import { performance } from 'node:perf_hooks';
import { RestartPolicy } from './restart-policy.js';

/** Why the primary killed a worker itself. */
export type KillCause = 'reload' | 'health';

export type Replacement =
  /** killed for a reload: forked at once, not a restart */
  | { readonly cause: 'reload'; readonly delayMs: 0 }
  /** lost (a crash, or killed for its health checks): forked after delayMs (0: at once) */
  | { readonly cause: 'health' | 'crash'; readonly delayMs: number }
  /** crashed before the sidecar was ready: the start fails */
  | { readonly cause: 'start-up' };

export class Replacements {
  /** Workers being killed by the primary, and why. */
  private readonly killing = new Map<number, KillCause>();

  constructor(readonly policy = new RestartPolicy()) {}

  /** The primary is killing this worker (SIGKILL) for `cause`. */
  kill(id: number, cause: KillCause): void {
    this.killing.set(id, cause);
  }

  /** Worker `id` exited; `started`: the sidecar was ready. Records a restart when it was lost. */
  exited(id: number, started: boolean, now = performance.now()): Replacement {
    const killed = this.killing.get(id);
    this.killing.delete(id);
    if (killed === 'reload') return { cause: 'reload', delayMs: 0 };
    if (killed === undefined && !started) return { cause: 'start-up' };
    return { cause: killed ?? 'crash', delayMs: this.policy.next(now) };
  }
}

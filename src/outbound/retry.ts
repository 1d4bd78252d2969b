// Timeouts and safe retries, per upstream. The forwarders ask for nothing here on a request
// that goes well: the deadline is one header read or two, and the budget counts the request
// with one increment. Only a failure before any of the response reached the app consults
// the policy: is the request safe to send again (idempotent method or Idempotency-Key, body
// buffered whole), is there a retry left, does the wait (Retry-After, else exponential
// backoff with full jitter) fit in what remains of the deadline, and does the budget allow
// it (retries at most `ratio` of requests plus `minPerSecond`, as Linkerd's default).

import type { RetryConfig } from '../config/upstream-policy-config.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import { retryAfterMs } from '../http/retry-after.js';

// moved to src/http/deadline.ts (shared with the inbound side); re-exported for the forwarders
export { appDeadlineMs } from '../http/deadline.js';

export type RetryReason = 'connect_failure' | 'reset' | 'status_503' | 'status_429';
/** `cancelled`: the app left (or its deadline passed on its side) before the retry had an outcome. */
export type RetryOutcome = 'success' | 'failure' | 'cancelled';

export const RETRY_DEFAULTS: RetryConfig = Object.freeze({
  attempts: 2,
  budgetRatio: 0.2,
  budgetMinPerSecond: 10,
  backoffBaseMs: 25,
  backoffMaxMs: 1000,
  bufferLimitBytes: 64 * 1024,
});

/** Envoy's stream idle timeout: long enough for quiet streams, short enough to free dead ones. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;

/** May this request be sent again? Idempotent by method, or made so by the app's Idempotency-Key. */
export { isRepeatableRequest as isRetryableRequest } from '../http/idempotency.js';

/** `Retry-After` in ms, only in the RFC's forms (src/http/retry-after.ts): anything else leaves the backoff to apply. */
export { retryAfterMs };

/** Full jitter: uniform in [0, min(max, base·2^(retry-1))]. */
export function backoffMs(retry: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(30, retry - 1));
  return Math.random() * ceiling;
}

/**
 * Token-bucket retry budget. Each request earns `ratio` of a retry (folded in lazily, so the
 * hot path is one increment); earnings are capped, so a long healthy spell cannot be spent
 * as a storm later. Besides, a reserve refills at `minPerSecond` (up to one second's worth),
 * so a quiet upstream can still retry.
 */
export class RetryBudget {
  /** Requests not yet folded into `earned`. */
  requests = 0;
  private earned = 0;
  private reserve: number;
  private refilledAt: number;
  private readonly earnedCap: number;

  // a monotonic clock: a wall clock stepped back would leave the reserve empty for as long as the step
  constructor(private readonly ratio: number, private readonly minPerSecond: number, nowMs: number = performance.now()) {
    this.reserve = minPerSecond;
    this.refilledAt = nowMs;
    this.earnedCap = Math.max(1, ratio * 100);
  }

  tryWithdraw(nowMs: number = performance.now()): boolean {
    if (this.requests > 0) {
      this.earned = Math.min(this.earnedCap, this.earned + this.requests * this.ratio);
      this.requests = 0;
    }
    this.reserve = Math.min(this.minPerSecond, this.reserve + (Math.max(0, nowMs - this.refilledAt) / 1000) * this.minPerSecond);
    this.refilledAt = nowMs;
    if (this.earned >= 1) {
      this.earned -= 1;
      return true;
    }
    if (this.reserve >= 1) {
      this.reserve -= 1;
      return true;
    }
    return false;
  }
}

export class RetryPolicy {
  readonly attempts: number;
  readonly bufferLimit: number;
  readonly budget: RetryBudget;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly upstream: string,
    config: RetryConfig | undefined,
    private readonly observer: TrafficObserver,
  ) {
    const c = config ?? RETRY_DEFAULTS;
    this.attempts = c.attempts;
    this.bufferLimit = c.bufferLimitBytes;
    this.baseMs = c.backoffBaseMs;
    this.maxMs = c.backoffMaxMs;
    this.budget = new RetryBudget(c.budgetRatio, c.budgetMinPerSecond);
  }

  /**
   * The wait before retry number `retry` (1-based), or -1: no retries left, the wait does not
   * fit in `remainingMs`, or the budget is spent (counted). Only called for a request already
   * known to be safe to repeat.
   */
  plan(retry: number, retryAfter: unknown, remainingMs: number): number {
    if (retry > this.attempts) return -1;
    const told = retryAfter === undefined ? undefined : retryAfterMs(retryAfter);
    const wait = told ?? backoffMs(retry, this.baseMs, this.maxMs);
    if (wait >= remainingMs) return -1;
    if (!this.budget.tryWithdraw()) {
      this.observer.retryBudgetExhausted?.(this.upstream);
      return -1;
    }
    return wait;
  }

  report(reason: RetryReason, outcome: RetryOutcome): void {
    this.observer.retryAttempted?.(this.upstream, reason, outcome);
  }
}

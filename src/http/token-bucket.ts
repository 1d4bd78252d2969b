// Token-bucket rate limiting keyed by caller (address or identity). Buckets refill lazily on
// use, so there are no timers; idle buckets are swept so that many callers cannot grow memory.

export interface RateLimitSpec {
  /** Tokens added per second. */
  readonly perSecond: number;
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export type TakeResult = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;

  constructor(private readonly spec: RateLimitSpec, private readonly maxKeys = 100_000) {}

  take(key: string, nowMs = Date.now()): TakeResult {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      this.sweep(nowMs);
      bucket = { tokens: this.spec.burst, updatedMs: nowMs };
      this.buckets.set(key, bucket);
    } else {
      const refill = ((nowMs - bucket.updatedMs) / 1000) * this.spec.perSecond;
      bucket.tokens = Math.min(this.spec.burst, bucket.tokens + refill);
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: (1 - bucket.tokens) / this.spec.perSecond };
  }

  private sweep(nowMs: number): void {
    // a bucket that has had time to refill completely is indistinguishable from a new one
    const fullAfterMs = (this.spec.burst / this.spec.perSecond) * 1000;
    if (this.buckets.size < this.maxKeys && nowMs - this.lastSweepMs < fullAfterMs) return;
    this.lastSweepMs = nowMs;
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.updatedMs >= fullAfterMs) this.buckets.delete(key);
    }
  }
}

// Token-bucket rate limiting keyed by caller (address or identity). Buckets refill lazily on
// use, so there are no timers; idle buckets are swept so that many callers cannot grow memory.
// A bucket can also be held directly (TokenBucket), e.g. cached per connection, so the hot
// path costs no map lookup; a held bucket that was swept says so (`evicted`) and the holder
// looks it up again, so one key never ends up with two live buckets.

export interface RateLimitSpec {
  /** Tokens added per second. */
  readonly perSecond: number;
  readonly burst: number;
}

export type TakeResult = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

const ALLOWED: TakeResult = Object.freeze({ allowed: true });

export class TokenBucket {
  tokens: number;
  updatedMs: number;
  /** Swept out of its KeyedTokenBuckets: look the key up again rather than keep using it. */
  evicted = false;

  constructor(readonly spec: RateLimitSpec, nowMs: number) {
    this.tokens = spec.burst;
    this.updatedMs = nowMs;
  }

  /**
   * Adds what accrued since the last use. A clock that stepped back adds nothing, and counts
   * from where it is now (else nothing would accrue until it caught up again, while callers
   * were told to come back in a second). The clock is monotonic by default.
   */
  refill(nowMs: number): void {
    const elapsedMs = nowMs - this.updatedMs;
    if (elapsedMs <= 0) {
      if (elapsedMs < 0) this.updatedMs = nowMs;
      return;
    }
    this.tokens = Math.min(this.spec.burst, this.tokens + (elapsedMs / 1000) * this.spec.perSecond);
    this.updatedMs = nowMs;
  }

  /** Seconds until one whole token is there (0 when one is there now); call after refill. */
  waitSeconds(): number {
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.spec.perSecond;
  }

  take(nowMs = performance.now()): TakeResult {
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return ALLOWED;
    }
    return { allowed: false, retryAfterSeconds: this.waitSeconds() };
  }
}

export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private lastSweepMs = 0;

  constructor(readonly spec: RateLimitSpec, private readonly maxKeys = 100_000) {}

  get size(): number {
    return this.buckets.size;
  }

  /** The bucket of `key`, created full if there is none. */
  bucket(key: string, nowMs = performance.now()): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.sweep(nowMs);
      bucket = new TokenBucket(this.spec, nowMs);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  take(key: string, nowMs = performance.now()): TakeResult {
    return this.bucket(key, nowMs).take(nowMs);
  }

  private sweep(nowMs: number): void {
    // a bucket that has had time to refill completely is indistinguishable from a new one
    const fullAfterMs = (this.spec.burst / this.spec.perSecond) * 1000;
    if (this.buckets.size < this.maxKeys && nowMs - this.lastSweepMs < fullAfterMs) return;
    this.lastSweepMs = nowMs;
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.updatedMs >= fullAfterMs) {
        bucket.evicted = true;
        this.buckets.delete(key);
      }
    }
    // still full of busy keys (more callers than maxKeys): drop a tenth, so the next new keys
    // do not each pay for a whole scan; the fullest, which lose least by coming back full (the
    // oldest went first: a caller held back, its bucket empty, got its whole burst again once
    // enough others had come)
    if (this.buckets.size >= this.maxKeys) {
      const keep = Math.floor(this.maxKeys * 0.9);
      for (const bucket of this.buckets.values()) bucket.refill(nowMs);
      const fullestFirst = [...this.buckets].sort((a, b) => b[1].tokens - a[1].tokens);
      for (const [key, bucket] of fullestFirst) {
        if (this.buckets.size <= keep) break;
        bucket.evicted = true;
        this.buckets.delete(key);
      }
    }
  }
}

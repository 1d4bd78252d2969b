// Inbound rate limiting: a token bucket per caller identity and one for all callers together
// (inbound.rateLimit). Checked once per request after authorization, before the app: the
// caller's bucket is cached on its Caller, so a request costs two refills and a compare.
// A request takes a token from both buckets or from neither, so a refusal by the shared limit
// does not also spend the caller's own budget. A reload keeps the buckets of a limit it leaves
// as it was (a caller held back stays held back when only the total changes); a changed limit
// starts with full buckets.

import type { InboundRateLimit, RateSpec } from '../config/inbound-config.js';
import { KeyedTokenBuckets, TokenBucket } from '../http/token-bucket.js';
import type { Caller } from './caller.js';

export interface RateLimitRefusal {
  /** Which limit refused: the caller's own, or the listener's total. */
  readonly scope: 'identity' | 'total';
  /** Until a token is there in every bucket that lacks one. */
  readonly retryAfterSeconds: number;
}

export class InboundRateLimiter {
  private readonly perIdentity: KeyedTokenBuckets | undefined;
  private readonly total: TokenBucket | undefined;

  private constructor(
    private readonly config: InboundRateLimit,
    previous: InboundRateLimiter | undefined,
    nowMs: number,
  ) {
    const kept = previous?.config;
    this.perIdentity = !config.perIdentity ? undefined : sameRate(kept?.perIdentity, config.perIdentity) ? previous?.perIdentity : new KeyedTokenBuckets(config.perIdentity, 10_000);
    this.total = !config.total ? undefined : sameRate(kept?.total, config.total) ? previous?.total : new TokenBucket(config.total, nowMs);
  }

  /**
   * undefined when nothing is limited, so the request path can skip the check altogether.
   * `previous`: the limiter a reload replaces, whose buckets are kept for a limit unchanged.
   */
  static create(config: InboundRateLimit | undefined, previous?: InboundRateLimiter, nowMs = performance.now()): InboundRateLimiter | undefined {
    if (config === undefined || (config.perIdentity === undefined && config.total === undefined)) return undefined;
    return new InboundRateLimiter(config, previous, nowMs);
  }

  /** Takes a token for one request of `caller`; undefined when allowed. */
  take(caller: Caller, nowMs = performance.now()): RateLimitRefusal | undefined {
    const own = this.perIdentity === undefined ? undefined : caller.bucketIn(this.perIdentity, nowMs);
    const total = this.total;
    let ownWait = 0;
    let totalWait = 0;
    if (own !== undefined) {
      own.refill(nowMs);
      ownWait = own.waitSeconds();
    }
    if (total !== undefined) {
      total.refill(nowMs);
      totalWait = total.waitSeconds();
    }
    if (ownWait > 0 || totalWait > 0) {
      return ownWait >= totalWait ? { scope: 'identity', retryAfterSeconds: ownWait } : { scope: 'total', retryAfterSeconds: totalWait };
    }
    if (own !== undefined) own.tokens -= 1;
    if (total !== undefined) total.tokens -= 1;
    return undefined;
  }
}

function sameRate(a: RateSpec | undefined, b: RateSpec): boolean {
  return a !== undefined && a.perSecond === b.perSecond && a.burst === b.burst;
}

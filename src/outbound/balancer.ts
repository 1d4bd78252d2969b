// Load balancing, outlier ejection and circuit-breaker settings, per upstream.
// Balancing is power of two choices over a peak-EWMA load estimate (Finagle / Linkerd): each
// endpoint keeps an exponentially weighted moving average of its response latency that decays
// with time (`decayMs`) and jumps to a higher sample at once (peaks count immediately); its
// cost is ewma × (outstanding + 1). A 429, a 503 or a failure is taken as a high latency sample,
// so an endpoint that sheds load, or fails, is picked less; and a failing endpoint's cost is
// multiplied by its failures (failureFactor): a penalty sample alone lost to the cost of healthy
// endpoints under load, whose latency × outstanding went past it, and the endpoint failing at
// once, never with anything outstanding, drew most of the traffic. Outlier ejection: an endpoint with
// `consecutiveFailures` failures in a row (connect failure, reset, timeout, any 5xx; not a request
// the app cancelled, see pool-counting.ts, though the time it waited still raises the
// endpoint's latency estimate) is left out for baseEjection × (its ejection
// count), capped; then it re-enters on probation (one more failure ejects it again for longer;
// one success clears its record). At most maxEjectionPercent of an upstream's endpoints are
// out at a time.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { BalancerConfig, CircuitBreakerConfig, OutlierDetectionConfig } from '../config/upstream-policy-config.js';
import type { TrafficObserver } from '../metrics/traffic.js';

export const BALANCER_DEFAULTS: BalancerConfig = Object.freeze({ decayMs: 10_000 });
export const CIRCUIT_DEFAULTS: CircuitBreakerConfig = Object.freeze({ maxRequests: 1024, maxPending: 1024 });
export const OUTLIER_DEFAULTS: OutlierDetectionConfig = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 5 * 60_000,
  maxEjectionPercent: 50,
});

/** The latency sample (ms) a 429, a 503 or a failure counts as. */
export const PENALTY_MS = 250;
/** The weight of one outcome in an endpoint's failure rate: about the last ten count. */
const FAILURE_RATE_WEIGHT = 0.1;
/** Failures in a row past this multiply the cost no further (2^10). */
const MAX_FAILURE_DOUBLINGS = 10;
/** Cost of an endpoint with requests outstanding but no latency sample yet (Finagle's penalty). */
const UNKNOWN_COST = 1e6;

/** The balancer's and outlier detector's state, kept on each endpoint (no map lookups). */
export interface LoadState {
  /** Requests on this endpoint now (streams open). */
  outstanding: number;
  /** Peak EWMA of the latency, ms, as of `stamp`. */
  ewma: number;
  /** performance.now() of the last sample. */
  stamp: number;
  /** Failures in a row. */
  failures: number;
  /** Share of failures among the recent outcomes (0-1), as of `failureStamp`; decays with time as the EWMA does. */
  failureRate: number;
  /** performance.now() of the last outcome folded into `failureRate`. */
  failureStamp: number;
  ejected: boolean;
  /** performance.now() ms the ejection ends (meaningful while `ejected`; the timer re-admits it, this is what GET /upstreams shows, as a wall time: upstreams-view.ts). */
  ejectedUntil: number;
  /** Ejections since the last success: the next ejection lasts base × (this + 1). */
  ejections: number;
  ejectTimer: NodeJS.Timeout | undefined;
  /** Its sessions with a probe's PING out (session-keepalive.ts): no new request goes there meanwhile if another endpoint can take it. */
  probing: number;
}

/** The keepalive's `probing` hook for an endpoint's session: counts the probes out on the endpoint. */
export function countProbes(e: LoadState): (out: boolean) => void {
  return (out) => void (e.probing += out ? 1 : -1);
}

export function initialLoad(): LoadState {
  return { outstanding: 0, ewma: 0, stamp: 0, failures: 0, failureRate: 0, failureStamp: 0, ejected: false, ejectedUntil: 0, ejections: 0, ejectTimer: undefined, probing: 0 };
}

/**
 * ewma × (outstanding + 1) × failureFactor, the EWMA and the failure rate decayed to `now` (no
 * outcome for a while: they drift down, so the endpoint is probed again).
 */
export function loadCost(e: LoadState, now: number, decayMs: number): number {
  if (e.ewma === 0) return e.outstanding === 0 ? 0 : UNKNOWN_COST + e.outstanding;
  const elapsed = now - e.stamp;
  const ewma = elapsed > 0 ? e.ewma * Math.exp(-elapsed / decayMs) : e.ewma;
  const cost = ewma * (e.outstanding + 1);
  return e.failures === 0 && e.failureRate === 0 ? cost : cost * failureFactor(e, now, decayMs);
}

/**
 * How much a failing endpoint's cost is raised: doubled per failure in a row (a broken endpoint
 * loses every pick after a few), and divided by its recent success share squared (one failing
 * every other request costs four to eight times its latency: it is picked far less often than a
 * healthy one of the same speed, where failures not in a row never ejected it and it drew its
 * full share; the outbound review measured 171 of 400 requests on such an endpoint of three).
 */
export function failureFactor(e: LoadState, now: number, decayMs: number): number {
  const rate = currentFailureRate(e, now, decayMs);
  const success = Math.max(0.01, 1 - rate);
  // the doublings fade as the rate does: only a success cleared them, and a success needs a
  // pick, so an endpoint that had recovered (and that the ejection cap had kept in) waited 2.5-5
  // times longer for its next request than before them (108 s against 0.5 s at the default
  // decay: the second review)
  const fade = e.failureStamp === 0 ? 1 : Math.exp(-Math.max(0, now - e.failureStamp) / decayMs);
  return 2 ** (Math.min(e.failures, MAX_FAILURE_DOUBLINGS) * fade) / (success * success);
}

function currentFailureRate(e: LoadState, now: number, decayMs: number): number {
  if (e.failureRate === 0) return 0;
  const elapsed = now - e.failureStamp;
  return elapsed > 0 ? e.failureRate * Math.exp(-elapsed / decayMs) : e.failureRate;
}

/** Folds one outcome (failed or not) into the endpoint's failure rate. */
function observeOutcome(e: LoadState, failed: boolean, now: number, decayMs: number): void {
  const rate = currentFailureRate(e, now, decayMs);
  e.failureRate = rate * (1 - FAILURE_RATE_WEIGHT) + (failed ? FAILURE_RATE_WEIGHT : 0);
  // a rate this small changes no pick: 0 keeps loadCost on its short path
  if (e.failureRate < 1e-3) e.failureRate = 0;
  e.failureStamp = now;
}

/** Folds one latency sample (ms) into the estimate: peaks at once, lower values by time decay. */
export function observeLatency(e: LoadState, rttMs: number, now: number, decayMs: number): void {
  if (rttMs >= e.ewma) e.ewma = rttMs;
  else {
    const w = Math.exp(-Math.max(0, now - e.stamp) / decayMs);
    e.ewma = e.ewma * w + rttMs * (1 - w);
  }
  e.stamp = now;
}

interface Ejectable extends LoadState {
  readonly key: string;
}

/** Outcomes of requests, per endpoint of one upstream: the load estimate and outlier ejection. */
export class EndpointHealth<E extends Ejectable> {
  private closed = false;
  /** The pool was retired by a reload: the upstream's metrics are the pool now routing's. */
  private retired = false;

  constructor(
    private readonly upstream: string,
    private readonly endpoints: () => readonly E[],
    private readonly decayMs: number,
    private readonly outlier: OutlierDetectionConfig,
    private readonly observer: TrafficObserver,
    private readonly logger: Logger,
  ) {}

  /**
   * A response head arrived `rttMs` after the stream opened. A 5xx is a failure, as Envoy's
   * consecutive_5xx and Linkerd's failure accrual count it: fast as a broken endpoint answers,
   * as a plain latency sample it would make that endpoint the cheapest and draw the traffic.
   * A 429 sheds load: less traffic, but not broken.
   */
  responded(e: E, status: number, rttMs: number): void {
    const now = performance.now();
    if (status >= 500 || status === 429) {
      observeLatency(e, Math.max(PENALTY_MS, rttMs), now, this.decayMs);
      if (status !== 429) this.failed(e, now);
      return;
    }
    observeLatency(e, rttMs, now, this.decayMs);
    if (e.failureRate !== 0) observeOutcome(e, false, now, this.decayMs);
    e.failures = 0;
    if (!e.ejected) e.ejections = 0;
  }

  /**
   * An answer this endpoint gave that is no use (a head over our limits, a reset with
   * ENHANCE_YOUR_CALM), or SETTINGS that refuse a head another endpoint may take: the latency
   * sample is a penalty, so the balancer turns to the others, but it is no failure toward
   * ejection (the request itself may be what is over the limits).
   */
  penalized(e: E): void {
    observeLatency(e, PENALTY_MS, performance.now(), this.decayMs);
  }

  /**
   * A stream given up with no answer by the app (its deadline, or it left): no failure, but
   * the endpoint's latency is at least `waitedMs`. A bound, not a sample: it raises the
   * estimate as a peak does and never lowers it (a stream dropped at once, never used, says
   * nothing). Ignored, an endpoint that accepts streams and never answers kept the cost of a
   * fresh one (0) while every caller with a deadline cut its own request: it drew them all.
   */
  tookAtLeast(e: E, waitedMs: number): void {
    const now = performance.now();
    // the estimate as it stands now (decayed since its last sample), as loadCost reads it
    const current = e.ewma === 0 ? 0 : e.ewma * Math.exp(-Math.max(0, now - e.stamp) / this.decayMs);
    if (waitedMs <= current) return;
    e.ewma = waitedMs;
    e.stamp = now;
  }

  /** A connect failure, a reset or a timeout before the response (the latency sample is a penalty). */
  failedWithPenalty(e: E, rttMs: number): void {
    const now = performance.now();
    observeLatency(e, Math.max(PENALTY_MS, rttMs), now, this.decayMs);
    this.failed(e, now);
  }

  private failed(e: E, now: number): void {
    e.failures += 1;
    observeOutcome(e, true, now, this.decayMs);
    const threshold = this.outlier.consecutiveFailures;
    if (threshold === 0 || e.ejected || this.closed || e.failures < threshold) return;
    const list = this.endpoints();
    // removed by a reload or DNS (forget() ran) while requests were in flight on it: their
    // failures eject nothing (it was logged, counted and added to the gauge beside the set)
    if (!list.includes(e)) return;
    const max = Math.floor((list.length * this.outlier.maxEjectionPercent) / 100);
    const ejected = this.ejectedCount(list);
    if (ejected >= max) return;
    e.ejected = true;
    e.ejections += 1;
    const ms = Math.min(this.outlier.baseEjectionMs * e.ejections, this.outlier.maxEjectionMs);
    e.ejectedUntil = performance.now() + ms;
    e.ejectTimer = setTimeout(() => this.readmit(e), ms);
    e.ejectTimer.unref();
    this.logger.warn({ upstream: this.upstream, endpoint: e.key, failures: e.failures, ejectedForMs: ms }, 'upstream endpoint ejected after consecutive failures');
    if (this.retired) return;
    this.observer.outlierEjected?.(this.upstream);
    this.observer.ejectedEndpointsChanged?.(this.upstream, ejected + 1);
  }

  /** Back on probation: one more failure ejects it again (for longer), one success clears it. */
  private readmit(e: E): void {
    e.ejectTimer = undefined;
    if (!e.ejected) return;
    e.ejected = false;
    e.failures = Math.max(0, this.outlier.consecutiveFailures - 1);
    // a clean estimate, as for a new endpoint: it is tried soon, and its next answer says how it does
    // (the failures in a row stay for probation: an estimate of 0 costs 0 whatever they multiply)
    e.ewma = 0;
    e.stamp = 0;
    e.failureRate = 0;
    this.logger.info({ upstream: this.upstream, endpoint: e.key }, 'ejected upstream endpoint re-admitted');
    if (!this.retired) this.observer.ejectedEndpointsChanged?.(this.upstream, this.ejectedCount(this.endpoints()));
  }

  /**
   * An endpoint left the set (DNS, a reload): its ejection, if any, ends with it, and the set
   * that is left keeps to maxEjectionPercent: the ones ejected soonest to end are re-admitted
   * now. Checked at ejection only, a list shrunk to the ejected ones (4 endpoints, 2 ejected,
   * then a reload to those 2) stayed all out for the whole ejection time (the resilience review).
   */
  forget(e: E): void {
    if (e.ejectTimer) clearTimeout(e.ejectTimer);
    e.ejectTimer = undefined;
    const wasEjected = e.ejected;
    e.ejected = false;
    const list = this.endpoints();
    const max = Math.floor((list.length * this.outlier.maxEjectionPercent) / 100);
    let over = this.ejectedCount(list) - max;
    while (over > 0) {
      let soonest: E | undefined;
      for (const c of list) if (c.ejected && (soonest === undefined || c.ejectedUntil < soonest.ejectedUntil)) soonest = c;
      if (soonest === undefined) break;
      if (soonest.ejectTimer) clearTimeout(soonest.ejectTimer);
      this.readmit(soonest);
      over--;
    }
    if (wasEjected && !this.retired) this.observer.ejectedEndpointsChanged?.(this.upstream, this.ejectedCount(list));
  }

  /**
   * A reload replaced or removed the pool: it goes on ejecting for its own requests still in
   * flight, but reports nothing more, and the gauge it set goes to 0 (what a new pool of the
   * same name starts with; for a removed upstream, none ejected). Left as it was, the gauge kept
   * the retired pool's count, for good once that pool was let go before re-admitting them.
   */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    if (this.ejectedCount(this.endpoints()) > 0) this.observer.ejectedEndpointsChanged?.(this.upstream, 0);
  }

  close(): void {
    this.closed = true;
    for (const e of this.endpoints()) {
      if (e.ejectTimer) clearTimeout(e.ejectTimer);
      e.ejectTimer = undefined;
    }
  }

  private ejectedCount(list: readonly E[]): number {
    let n = 0;
    for (let i = 0; i < list.length; i++) if ((list[i] as E).ejected) n++;
    return n;
  }
}

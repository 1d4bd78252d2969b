// An upstream's traffic policies: peak-EWMA balancing (`balancer`), `retries`, `circuitBreaker`
// and `outlierDetection`, each a small nested section with every key optional, and their
// defaults (also what the admin /config view fills in when a key is not written).

import { readDuration, readPositiveInteger } from './fields.js';
import { readSize } from './openapi-config.js';
import type { YamlValue } from './yaml-value.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const BALANCER_KEYS: readonly string[] = ['decay'];
export const CIRCUIT_BREAKER_KEYS: readonly string[] = ['maxRequests', 'maxPending'];
export const OUTLIER_DETECTION_KEYS: readonly string[] = ['consecutiveFailures', 'baseEjection', 'maxEjection', 'maxEjectionPercent'];
export const RETRIES_KEYS: readonly string[] = ['attempts', 'budget', 'backoff', 'bufferLimit'];
export const RETRY_BUDGET_KEYS: readonly string[] = ['ratio', 'minPerSecond'];
export const BACKOFF_KEYS: readonly string[] = ['base', 'max'];

/** `balancer: {decay: 10s}`: how fast the latency estimate forgets. */
export interface BalancerConfig {
  readonly decayMs: number;
}

/** `circuitBreaker: {maxRequests: 1024, maxPending: 1024}`. */
export interface CircuitBreakerConfig {
  /** Requests in flight (or waiting for a stream) toward the upstream. Default 1024. */
  readonly maxRequests: number;
  /** Requests waiting for a session or a free stream. Default 1024. */
  readonly maxPending: number;
}

/** `outlierDetection: {consecutiveFailures: 5, baseEjection: 30s, maxEjection: 5m, maxEjectionPercent: 50}`. */
export interface OutlierDetectionConfig {
  /** Failures in a row (connect failure, reset, timeout, 503) that eject an endpoint; 0 never ejects. Default 5. */
  readonly consecutiveFailures: number;
  /** An ejection lasts this × the endpoint's ejections in a row. Default 30 s. */
  readonly baseEjectionMs: number;
  /** ...capped at this. Default 5 min. */
  readonly maxEjectionMs: number;
  /** At most this share of the endpoints is ejected at once. Default 50. */
  readonly maxEjectionPercent: number;
}

/** `retries:` of an upstream, flattened. */
export interface RetryConfig {
  /** Retries after the first try (0: never retry). Default 2. */
  readonly attempts: number;
  /** Retries at most this fraction of requests... Default 0.2. */
  readonly budgetRatio: number;
  /** ...plus this many per second. Default 10. */
  readonly budgetMinPerSecond: number;
  /** Exponential backoff with full jitter: base 25 ms, capped at 1 s. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Request bodies up to this size are kept for replay; larger ones are never retried. Default 64 KiB. */
  readonly bufferLimitBytes: number;
}

// the same values as BALANCER_DEFAULTS etc. in src/outbound/balancer.ts (config does not import the data plane)
export const DEFAULT_DECAY_MS = 10_000;
export const DEFAULT_CIRCUIT: CircuitBreakerConfig = Object.freeze({ maxRequests: 1024, maxPending: 1024 });
export const DEFAULT_OUTLIER: OutlierDetectionConfig = Object.freeze({ consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 5 * 60_000, maxEjectionPercent: 50 });

/** `balancer: {decay: 10s}`. */
export function readBalancer(value: YamlValue): BalancerConfig | undefined {
  const map = value.map(BALANCER_KEYS);
  if (!map) return undefined;
  const decayMs = map.optional('decay', readDuration, DEFAULT_DECAY_MS);
  if (decayMs === undefined) return undefined;
  if (decayMs <= 0) return value.report('balancer.decay must be longer than 0');
  return { decayMs };
}

/** `circuitBreaker: {maxRequests: 1024, maxPending: 1024}`; each key optional. */
export function readCircuitBreaker(value: YamlValue): CircuitBreakerConfig | undefined {
  const map = value.map(CIRCUIT_BREAKER_KEYS);
  if (!map) return undefined;
  const maxRequests = map.optional('maxRequests', readPositiveInteger, DEFAULT_CIRCUIT.maxRequests);
  const maxPending = map.optional('maxPending', readPositiveInteger, DEFAULT_CIRCUIT.maxPending);
  return maxRequests === undefined || maxPending === undefined ? undefined : { maxRequests, maxPending };
}

/** `outlierDetection: {consecutiveFailures: 5, baseEjection: 30s, maxEjection: 5m, maxEjectionPercent: 50}`; each key optional. */
export function readOutlierDetection(value: YamlValue): OutlierDetectionConfig | undefined {
  const map = value.map(OUTLIER_DETECTION_KEYS);
  if (!map) return undefined;
  const d = DEFAULT_OUTLIER;
  const consecutiveFailures = map.optional('consecutiveFailures', (v) => readCount(v, 1000), d.consecutiveFailures);
  // a key left out takes its default as far as the one written allows: maxEjection: 10s alone
  // is not refused for being shorter than the unwritten 30 s base (the base follows it down)
  const maxWritten = map.has('maxEjection') ? map.optional('maxEjection', readDuration, d.maxEjectionMs) : undefined;
  const baseEjectionMs = map.optional('baseEjection', readDuration, Math.min(d.baseEjectionMs, maxWritten ?? Infinity));
  const maxEjectionMs = map.has('maxEjection') ? maxWritten : Math.max(d.maxEjectionMs, baseEjectionMs ?? 0);
  const maxEjectionPercent = map.optional('maxEjectionPercent', (v) => readCount(v, 100), d.maxEjectionPercent);
  if (consecutiveFailures === undefined || baseEjectionMs === undefined || maxEjectionMs === undefined || maxEjectionPercent === undefined) return undefined;
  if (maxEjectionMs < baseEjectionMs) return value.report(`maxEjection (${maxEjectionMs} ms) must not be shorter than baseEjection (${baseEjectionMs} ms)`);
  return { consecutiveFailures, baseEjectionMs, maxEjectionMs, maxEjectionPercent };
}

export const DEFAULT_RETRIES: RetryConfig = Object.freeze({ attempts: 2, budgetRatio: 0.2, budgetMinPerSecond: 10, backoffBaseMs: 25, backoffMaxMs: 1000, bufferLimitBytes: 64 * 1024 });

/** `retries: {attempts: 2, budget: {ratio: 0.2, minPerSecond: 10}, backoff: {base: 25ms, max: 1s}, bufferLimit: 64KiB}`; every key optional. */
export function readRetries(value: YamlValue): RetryConfig | undefined {
  const map = value.map(RETRIES_KEYS);
  if (!map) return undefined;
  const d = DEFAULT_RETRIES;
  const attempts = map.optional('attempts', (v) => readCount(v, 10), d.attempts);
  const budget = map.optional('budget', readRetryBudget, { ratio: d.budgetRatio, minPerSecond: d.budgetMinPerSecond });
  const backoff = map.optional('backoff', readBackoff, { base: d.backoffBaseMs, max: d.backoffMaxMs });
  const bufferLimitBytes = map.optional('bufferLimit', readSize, d.bufferLimitBytes);
  if (attempts === undefined || !budget || !backoff || bufferLimitBytes === undefined) return undefined;
  if (backoff.max < backoff.base) return value.report(`backoff.max (${backoff.max} ms) must not be shorter than backoff.base (${backoff.base} ms)`);
  return { attempts, budgetRatio: budget.ratio, budgetMinPerSecond: budget.minPerSecond, backoffBaseMs: backoff.base, backoffMaxMs: backoff.max, bufferLimitBytes };
}

function readRetryBudget(value: YamlValue): { ratio: number; minPerSecond: number } | undefined {
  const map = value.map(RETRY_BUDGET_KEYS);
  if (!map) return undefined;
  const ratio = map.optional('ratio', readRatio, DEFAULT_RETRIES.budgetRatio);
  const minPerSecond = map.optional('minPerSecond', (v) => readCount(v, 100_000), DEFAULT_RETRIES.budgetMinPerSecond);
  return ratio === undefined || minPerSecond === undefined ? undefined : { ratio, minPerSecond };
}

function readBackoff(value: YamlValue): { base: number; max: number } | undefined {
  const map = value.map(BACKOFF_KEYS);
  if (!map) return undefined;
  // as for ejection times: base: 2s alone raises the unwritten max to it, max: 10ms alone lowers the unwritten base
  const maxWritten = map.has('max') ? map.optional('max', readDuration, DEFAULT_RETRIES.backoffMaxMs) : undefined;
  const base = map.optional('base', readDuration, Math.min(DEFAULT_RETRIES.backoffBaseMs, maxWritten ?? Infinity));
  const max = map.has('max') ? maxWritten : Math.max(DEFAULT_RETRIES.backoffMaxMs, base ?? 0);
  return base === undefined || max === undefined ? undefined : { base, max };
}

function readCount(value: YamlValue, max: number): number | undefined {
  const n = value.number('a whole number');
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 0 || n > max) return value.report(`${value.display()} must be a whole number from 0 to ${max}`);
  return n;
}

function readRatio(value: YamlValue): number | undefined {
  const n = value.number('a fraction such as 0.2');
  if (n === undefined) return undefined;
  if (!(n >= 0 && n <= 1)) return value.report(`${value.display()} must be between 0 and 1`);
  return n;
}

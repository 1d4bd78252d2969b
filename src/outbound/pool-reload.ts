// A live reload of one upstream's pool (upstream-pool.ts): whether a reloaded config can run on
// the pool as it is (keeping its sessions, endpoint health and load estimates), and the settings
// then changed in place (endpoints, timeouts, the connect bound and the first lookup's wait,
// retries, circuit breaker). Separate from the pool's request path: this runs once per reload,
// never per request. Plain functions of the pool, as the other pool-*.ts.

import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TUNNEL_IDLE_TIMEOUT_MS } from '../config/fields.js';
import type { UpstreamConfig } from '../config/outbound-config.js';
import { CIRCUIT_DEFAULTS } from './balancer.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RetryPolicy } from './retry.js';
import type { UpstreamPool } from './upstream-pool.js';

/**
 * Whether a reloaded config for this upstream can run on this pool (and keep its sessions):
 * same name, identity, balancer and outlier detection. Endpoints, timeouts, retries and the
 * circuit breaker are then changed in place by reconfigure(): an endpoint added or removed
 * used to replace the pool, redialling every endpoint that stayed and forgetting which were
 * ejected.
 */
export function canReuse(pool: UpstreamPool, next: UpstreamConfig): boolean {
  const a = pool.config;
  return (
    !pool.closed &&
    a.name === next.name &&
    a.identity === next.identity &&
    JSON.stringify(a.balancer) === JSON.stringify(next.balancer) &&
    JSON.stringify(a.outlierDetection) === JSON.stringify(next.outlierDetection)
  );
}

/** Applies a reloaded config that canReuse() accepted; requests already started keep what they read. */
export function reconfigure(pool: UpstreamPool, next: UpstreamConfig): void {
  const prev = pool.config;
  pool.config = next;
  // those that stay keep their sessions and health; those removed wind down (endpoints.ts)
  if (JSON.stringify(prev.endpoints) !== JSON.stringify(next.endpoints)) pool.endpoints.reconfigure(next.endpoints);
  pool.timeoutMs = next.timeoutMs;
  pool.idleTimeoutMs = next.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  pool.tunnelIdleTimeoutMs = next.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_MS;
  // read per dial and per wait: new dials take it, open sessions are not touched
  pool.connectMs = connectMsOf(next);
  pool.lookupWaitMs = lookupWaitMsOf(next.timeoutMs);
  pool.circuit = next.circuitBreaker ?? CIRCUIT_DEFAULTS;
  if (JSON.stringify(prev.retries) !== JSON.stringify(next.retries)) pool.retry = new RetryPolicy(next.name, next.retries, pool.deps.observer);
}

/**
 * The connect bound of an upstream: its `connectTimeout` (5 s when not written), and never
 * longer than its `timeout`, which bounds the whole wait for the answer anyway (a dial outliving
 * it would have nobody left to carry); `timeout: 0` (no response-head deadline) leaves
 * `connectTimeout` alone.
 */
export function connectMsOf(config: Pick<UpstreamConfig, 'timeoutMs' | 'connectTimeoutMs'>): number {
  const connectMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return config.timeoutMs > 0 ? Math.min(config.timeoutMs, connectMs) : connectMs;
}

/** The longest a request waits for a first DNS lookup when `timeout` (0 included) does not say less. */
const LOOKUP_WAIT_CAP_MS = 10_000;

/**
 * How long a request that finds no address of its upstream known waits for the lookup in
 * progress (first-addresses.ts): its timeout, at most 10 s (10 s with timeout 0). Not the
 * connect bound: a lookup is not a dial to an endpoint, and a short `connectTimeout` (meant to
 * leave a dead endpoint quickly) would fail every request that came during a slow first lookup.
 */
export function lookupWaitMsOf(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.min(timeoutMs, LOOKUP_WAIT_CAP_MS) : LOOKUP_WAIT_CAP_MS;
}

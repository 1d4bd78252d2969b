// A live reload of one upstream's pool (upstream-pool.ts): whether a reloaded config can run on
// the pool as it is (keeping its sessions, endpoint health and load estimates), and the settings
// then changed in place (endpoints, timeouts, the connect bound, retries, circuit breaker). Separate from
// the pool's request path: this runs once per reload, never per request. Plain functions of the
// pool, as the other pool-*.ts.

import { DEFAULT_TUNNEL_IDLE_TIMEOUT_MS } from '../config/fields.js';
import type { UpstreamConfig } from '../config/outbound-config.js';
import { CIRCUIT_DEFAULTS } from './balancer.js';
import { DEFAULT_IDLE_TIMEOUT_MS, RetryPolicy } from './retry.js';
import type { UpstreamPool } from './upstream-pool.js';

const CONNECT_TIMEOUT_CAP_MS = 10_000;

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
  pool.connectMs = connectMsOf(next.timeoutMs);
  pool.circuit = next.circuitBreaker ?? CIRCUIT_DEFAULTS;
  if (JSON.stringify(prev.retries) !== JSON.stringify(next.retries)) pool.retry = new RetryPolicy(next.name, next.retries, pool.deps.observer);
}

/** The connect bound of an upstream: its timeout, at most 10 s; timeout 0 (no response-head deadline) still dials within 10 s. */
export function connectMsOf(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.min(timeoutMs, CONNECT_TIMEOUT_CAP_MS) : CONNECT_TIMEOUT_CAP_MS;
}

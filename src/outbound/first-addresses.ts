// A request that comes while no address of its upstream is known (the first lookup of its
// names still running: at start, or after a reload that changed them) waits for that lookup,
// at most its `timeout`, 10 s at most (10 s with `timeout: 0`: lookupWaitMsOf in
// pool-reload.ts), and no longer than its requester does; then, still with no address, it
// fails naming why. It waited on the lookup itself: with `timeout: 0` as long as getaddrinfo
// took (resolv.conf's timeout × attempts × nameservers: 30 s with glibc's defaults, minutes
// with others), past the 10 s the README promises, and a request its app had left kept its
// place in `pending` (circuitBreaker.maxPending) until the lookup ended.

import { MeshcarError } from '../errors.js';
import { StreamWait } from './stream-wait.js';
import type { UpstreamPool } from './upstream-pool.js';

/** Resolves once the pool has an address, or throws upstream_unavailable saying why it has none. */
export async function firstAddresses(pool: UpstreamPool, wait: StreamWait | undefined): Promise<void> {
  const lookup = pool.endpoints.pending();
  // a tunnel's dial has no wait of its own: bounded the same, not cancellable
  if (lookup !== undefined) await (wait ?? new StreamWait()).upTo(lookup, pool.lookupWaitMs);
  if (pool.endpoints.size > 0) return;
  throw noAddress(pool);
}

/**
 * The pool has no address: 503 saying why (the lookup failed, or has not answered yet). Also
 * the answer when the request's timeout, which bounds this wait too, ends first: the wait was
 * for an address, not for an endpoint's answer (504 would blame an upstream never asked).
 */
export function noAddress(pool: UpstreamPool): MeshcarError {
  const why = pool.endpoints.noAddressReason();
  return new MeshcarError('upstream_unavailable', `no address is known for upstream ${pool.name}${why ? ` (${why})` : ''}`);
}

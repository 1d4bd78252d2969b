// Which endpoint of an upstream the next attempt goes to (EndpointSet.pick, endpoints.ts):
// power of two choices over each endpoint's peak-EWMA load cost (balancer.ts), skipping the
// endpoints resting after a connect failure, ejected, with a session's probe PING out (silent
// while requests waited, or a request timed out: session-keepalive.ts), or already tried by this
// request. Runs once per attempt, so it allocates nothing.

import { performance } from 'node:perf_hooks';
import { loadCost } from './balancer.js';
import type { UpstreamEndpoint } from './endpoints.js';

/** Whether an attempt may go to `c`: not resting, not ejected, not being probed, not the one to avoid nor one tried. */
function eligible(c: UpstreamEndpoint, now: number, avoid: UpstreamEndpoint | undefined, tried: ReadonlySet<UpstreamEndpoint> | undefined): boolean {
  return c !== avoid && !c.ejected && c.downUntil <= now && c.probing === 0 && !tried?.has(c);
}

/** Whether some endpoint other than `avoid` and those `tried` may take an attempt now (no allocation). */
export function anyEligible(list: readonly UpstreamEndpoint[], now: number, avoid: UpstreamEndpoint | undefined, tried: ReadonlySet<UpstreamEndpoint> | undefined): boolean {
  for (let i = 0; i < list.length; i++) if (eligible(list[i] as UpstreamEndpoint, now, avoid, tried)) return true;
  return false;
}

/**
 * `now` is performance.now(), the clock `downUntil` is kept on (pool-failover.ts).
 * Power of two choices: two distinct endpoints at random, the one with the lower load cost
 * (ewma × (outstanding + 1)) wins. Endpoints resting after a connect failure, ejected, with a
 * probe out, the one to `avoid` (a retry's last endpoint) and those in `tried` are not
 * candidates; when one of the two is not, the other is weighed against another candidate; when
 * neither is, the cheapest healthy candidate is searched for, else the cheapest one with a probe
 * out, else any endpoint not avoided nor tried (better to try than to refuse), unless a retry's
 * (`avoid` given) avoided or tried one ranks above what is left (healthy, or with a probe out
 * when only resting or ejected ones are left): then none, and the caller goes back to it
 * rather than to an ejected or resting one, as Envoy does outside panic. No allocation.
 */
export function pickEndpoint(list: readonly UpstreamEndpoint[], decay: number, now: number, avoid?: UpstreamEndpoint, tried?: ReadonlySet<UpstreamEndpoint>): UpstreamEndpoint | undefined {
  const n = list.length;
  if (n === 0) return undefined;
  if (n === 1) {
    const only = list[0] as UpstreamEndpoint;
    return only === avoid || tried?.has(only) ? undefined : only;
  }
  const t = performance.now();
  const i = Math.floor(Math.random() * n);
  let j = Math.floor(Math.random() * (n - 1));
  if (j >= i) j += 1;
  const a = list[i] as UpstreamEndpoint;
  const b = list[j] as UpstreamEndpoint;
  const okA = eligible(a, now, avoid, tried);
  const okB = eligible(b, now, avoid, tried);
  if (okA && okB) return loadCost(a, t, decay) <= loadCost(b, t, decay) ? a : b;
  if (okA || okB) {
    // one of the two cannot be taken: the other is weighed against a candidate that can, from a
    // random place. Taken unweighed, an endpoint failing every request but not ejected (the
    // ejection cap reached) drew its uniform share beside an ejected one (26 of 90 calls failed)
    const chosen = okA ? a : b;
    const start = Math.floor(Math.random() * n);
    for (let k = 0; k < n; k++) {
      const c = list[(start + k) % n] as UpstreamEndpoint;
      if (c !== chosen && eligible(c, now, avoid, tried)) return loadCost(chosen, t, decay) <= loadCost(c, t, decay) ? chosen : c;
    }
    return chosen;
  }
  let best: UpstreamEndpoint | undefined;
  let bestCost = Infinity;
  // neither ejected nor resting, but with a probe out: below the healthy ones, above the rest
  // (a live endpoint whose ACK is on its way, or on a slow path, beats one whose dial just
  // failed: taken as a tie, it sent 6 of 8 requests to wait out the other's connect timeout),
  // the cheapest of them
  let probed: UpstreamEndpoint | undefined;
  let probedCost = Infinity;
  let fallback: UpstreamEndpoint | undefined;
  let healthySkipped = false;
  let upSkipped = false;
  for (let k = 0; k < n; k++) {
    const c = list[(i + k) % n] as UpstreamEndpoint;
    const up = !c.ejected && c.downUntil <= now;
    const healthy = up && c.probing === 0;
    if (c === avoid || tried?.has(c)) {
      healthySkipped ||= healthy;
      upSkipped ||= up;
      continue;
    }
    if (up) {
      const cost = loadCost(c, t, decay);
      if (healthy && cost < bestCost) {
        best = c;
        bestCost = cost;
      } else if (!healthy && cost < probedCost) {
        probed = c;
        probedCost = cost;
      }
    } else if (fallback === undefined || (fallback.ejected && !c.ejected)) fallback = c;
  }
  // a retry whose only healthy endpoints are the avoided or tried ones: none here, so the caller
  // goes back to one of them (pick() with fewer left out) rather than to an ejected, resting or
  // probed one. The connect failover (pool-failover.ts, no `avoid`) takes an untried one of any state
  if (best === undefined && avoid !== undefined && healthySkipped) return undefined;
  // likewise a retry from an endpoint with a probe out (a timeout's probe starts before the
  // retry) when only resting or ejected ones are left: back to it, not to a dial that may hang
  if (best === undefined && probed === undefined && avoid !== undefined && upSkipped) return undefined;
  return best ?? probed ?? fallback;
}

// What a checked reload changes in the running sidecar (sidecar.ts), in two steps so that it is
// all or nothing: the check throws, while nothing has changed yet, what applying could fail on;
// the apply, which cannot fail, hands each live part its new settings (inbound authorization,
// rate limit, timeouts and OpenAPI spec; outbound upstreams, their route labels and specs; admin
// hosts; the log level; the observers). What changed is the reload plan's (config/reload-plan.ts).

import type { Logger } from 'pino';
import type { SidecarConfig } from './config/sidecar-config.js';
import type { ReloadPlan } from './config/reload-plan.js';
import { describeError } from './errors.js';
import type { RunningAdmin } from './admin/server.js';
import { checkLiveInbound, type Inbound } from './inbound/index.js';
import type { Outbound } from './outbound/index.js';
import type { LiveObservers, ObserverSettings } from './metrics/live-observers.js';
import type { TrafficMetrics } from './metrics/traffic-metrics.js';
import type { Guards } from './schema/guards.js';

/** What the observers follow in the config. */
export const observerSettings = (config: SidecarConfig): ObserverSettings => ({ requests: config.metrics.requests, access: config.log.access });

/** The parts of a running sidecar a reload changes live (absent: not built, or not in this process). */
export interface LiveParts {
  readonly inbound: Inbound | undefined;
  readonly outbound: Outbound | undefined;
  readonly admin: RunningAdmin | undefined;
  readonly traffic: TrafficMetrics;
  readonly observers: LiveObservers;
  readonly logger: Logger;
}

/** Throws what applying `plan` could fail on; nothing is changed. */
export function checkLiveReload(plan: ReloadPlan): void {
  try {
    if (plan.effective.inbound) checkLiveInbound(plan.effective.inbound);
  } catch (err) {
    throw new Error(`inbound.authorize: ${describeError(err)}`, { cause: err });
  }
}

/** Applies a plan checked by checkLiveReload to the live parts; `running` is the config in force until now. Cannot fail. */
export function applyLiveReload(parts: LiveParts, running: SidecarConfig, plan: ReloadPlan, guards: Guards): void {
  const { inbound, outbound } = parts;
  if (plan.applied.includes('inbound.authorize')) inbound?.setAuthorization(plan.effective.inbound?.authorize);
  if (plan.applied.some((path) => path.startsWith('inbound.rateLimit'))) inbound?.setRateLimit(plan.effective.inbound?.rateLimit);
  const timeouts = plan.effective.inbound;
  if (timeouts && plan.applied.some((path) => /^inbound\.(timeout|idleTimeout|tunnelIdleTimeout|routes)\b/.test(path))) {
    inbound?.setTimeouts({ timeoutMs: timeouts.timeoutMs, idleTimeoutMs: timeouts.idleTimeoutMs, tunnelIdleTimeoutMs: timeouts.tunnelIdleTimeoutMs, routes: timeouts.routes });
  }
  if (outbound && plan.effective.outbound && plan.applied.some((path) => path.startsWith('outbound.upstreams'))) {
    const upstreams = plan.effective.outbound.upstreams;
    // by name in one map: a find() per name was quadratic, and 8,000 upstreams (a 900 KB
    // config) held the event loop for seconds
    const routes = new Map(upstreams.map((u) => [u.name, u.routes]));
    for (const name of new Set([...(running.outbound?.upstreams ?? []).map((u) => u.name), ...routes.keys()])) {
      parts.traffic.setRoutes(name, routes.get(name));
    }
    outbound.setUpstreams(upstreams);
  }
  inbound?.setSchema(guards.inbound);
  outbound?.setSchemas(guards.upstreams);
  if (plan.applied.includes('admin.hosts')) parts.admin?.setHosts(plan.effective.admin.hosts);
  if (plan.effective.log.level !== running.log.level) parts.logger.level = plan.effective.log.level;
  if (plan.effective.log.access !== running.log.access || plan.effective.metrics.requests !== running.metrics.requests) {
    parts.observers.switchTo(observerSettings(plan.effective));
  }
}

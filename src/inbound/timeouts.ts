// Per-route inbound timeouts, compiled once: the wait for the app's response head (from the
// end of the request body; 0: none) and the idle timeout (no bytes either way); and the one idle timeout of WebSocket tunnels. Routes are exact paths or prefixes ending in `*`; the
// first one written that matches wins, a path matching none gets the inbound defaults. A
// lookup is one Map probe for the exact paths plus a startsWith() per prefix route.

import { DEFAULT_TUNNEL_IDLE_TIMEOUT_MS } from '../config/fields.js';
import { DEFAULT_INBOUND_IDLE_TIMEOUT_MS, type InboundRouteConfig } from '../config/inbound-config.js';
import { appDeadlineMs } from '../http/deadline.js';
import type { IncomingHttpHeaders } from 'node:http';

export interface InboundTimeoutsConfig {
  /** Time until the app's response head, from the end of the request body; 0: no limit. */
  readonly timeoutMs: number;
  /** No bytes either way for this long. Default 5 min. */
  readonly idleTimeoutMs?: number;
  readonly routes?: readonly InboundRouteConfig[];
  /** No bytes either way on a WebSocket tunnel for this long closes it. Default 1 h. */
  readonly tunnelIdleTimeoutMs?: number;
}

export interface RouteTimeouts {
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  /** The config key `timeoutMs` comes from, for a 504's message: which one to raise. */
  readonly timeoutKey: string;
  /** The config key `idleTimeoutMs` comes from, for the warn line of a stream it cut (stream-cut-log.ts). */
  readonly idleTimeoutKey: string;
}

interface PrefixRoute {
  readonly order: number;
  readonly prefix: string;
  readonly timeouts: RouteTimeouts;
}

export class InboundTimeouts {
  readonly defaults: RouteTimeouts;
  /** A tunnel (after its 101) is not a request of any route: one value for all. */
  readonly tunnelIdleTimeoutMs: number;
  private readonly exact = new Map<string, { order: number; timeouts: RouteTimeouts }>();
  private readonly prefixes: PrefixRoute[] = [];

  constructor(config: InboundTimeoutsConfig) {
    // 0: no deadline for the app's head (long-lived streams), the idle timeout alone
    if (!(config.timeoutMs >= 0)) throw new RangeError(`the inbound timeout must be zero or positive (got ${config.timeoutMs})`);
    const idle = config.idleTimeoutMs ?? DEFAULT_INBOUND_IDLE_TIMEOUT_MS;
    if (!(idle > 0)) throw new RangeError(`the inbound idle timeout must be positive (got ${idle})`);
    this.defaults = Object.freeze({ timeoutMs: config.timeoutMs, idleTimeoutMs: idle, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.idleTimeout' });
    this.tunnelIdleTimeoutMs = config.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_MS;
    if (!(this.tunnelIdleTimeoutMs > 0)) throw new RangeError(`the inbound tunnel idle timeout must be positive (got ${this.tunnelIdleTimeoutMs})`);
    (config.routes ?? []).forEach((route, order) => {
      const timeoutKey = route.timeoutMs === undefined ? this.defaults.timeoutKey : `inbound.routes[${order}].timeout (${route.path})`;
      const idleTimeoutKey = route.idleTimeoutMs === undefined ? this.defaults.idleTimeoutKey : `inbound.routes[${order}].idleTimeout (${route.path})`;
      const timeouts = Object.freeze({ timeoutMs: route.timeoutMs ?? this.defaults.timeoutMs, idleTimeoutMs: route.idleTimeoutMs ?? this.defaults.idleTimeoutMs, timeoutKey, idleTimeoutKey });
      if (route.path.endsWith('*')) this.prefixes.push({ order, prefix: route.path.slice(0, -1), timeouts });
      // an exact path written twice: the first one wins
      else if (!this.exact.has(route.path)) this.exact.set(route.path, { order, timeouts });
    });
  }

  /** The timeouts of the first route matching `path`, else the defaults. */
  forPath(path: string): RouteTimeouts {
    const exact = this.exact.get(path);
    const before = exact === undefined ? Infinity : exact.order;
    for (const route of this.prefixes) {
      if (route.order > before) break;
      if (path.startsWith(route.prefix)) return route.timeouts;
    }
    return exact === undefined ? this.defaults : exact.timeouts;
  }
}

/** The caller's own deadline (grpc-timeout, x-request-timeout) in ms, or undefined: read only when one is sent. */
export function callerDeadlineMs(headers: IncomingHttpHeaders): number | undefined {
  const grpc = headers['grpc-timeout'];
  const own = headers['x-request-timeout'];
  if (grpc === undefined && own === undefined) return undefined;
  return appDeadlineMs(grpc, own);
}

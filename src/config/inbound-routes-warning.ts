// The warning for an `inbound.routes` entry that can never apply: the first route matching a
// path gives its timeouts (src/inbound/timeouts.ts), so a route after one that matches every
// path it matches (the same exact path twice, `/api/orders` or `/api/orders/*` after `/api/*`)
// is dead text, most likely written in the wrong order. A valid config still: the warning names
// both entries and says to put the narrower first. `meshcar check` prints it, the sidecar's
// start and each reload log it once (config-warnings.ts).

import type { SidecarConfig } from './sidecar-config.js';

/** Whether every path `later` matches is matched by `earlier` (both exact or ending in `*`). */
function covers(earlier: string, later: string): boolean {
  if (!earlier.endsWith('*')) return earlier === later;
  // a prefix covers an exact path or a prefix that starts with it (`/a*` covers `/a/*`)
  return (later.endsWith('*') ? later.slice(0, -1) : later).startsWith(earlier.slice(0, -1));
}

/** Each route an earlier one shadows, with the first such earlier route: indexes into `routes`. */
export function shadowedRoutes(routes: readonly { readonly path: string }[]): { index: number; by: number }[] {
  const shadowed: { index: number; by: number }[] = [];
  routes.forEach((route, index) => {
    const by = routes.findIndex((earlier, before) => before < index && covers(earlier.path, route.path));
    if (by >= 0) shadowed.push({ index, by });
  });
  return shadowed;
}

/** One line per route that an earlier route shadows; `file` as the user named it. */
export function inboundRoutesWarnings(config: SidecarConfig, file: string): string[] {
  const routes = config.inbound?.routes ?? [];
  return shadowedRoutes(routes).map(({ index, by }) => {
    const [path, first] = [routes[index]!.path, routes[by]!.path];
    const what = first === path ? 'the same path' : 'every path it matches';
    return `${file}: inbound.routes[${index}] (${path}) never applies: inbound.routes[${by}] (${first}) comes first and matches ${what}; the first matching route wins, so put the narrower one first`;
  });
}

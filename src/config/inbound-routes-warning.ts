// The warning for an `inbound.routes` entry that can never apply: the first route matching a
// path gives its timeouts (src/inbound/timeouts.ts), so a route after one that matches every
// path it matches (the same exact path twice, `/api/orders` or `/api/orders/*` after `/api/*`)
// is dead text, most likely written in the wrong order. A valid config still: the warning names
// both entries and says to put the narrower first. `meshcar check` prints it, the sidecar's
// start and each reload log it once (config-warnings.ts).

import type { SidecarConfig } from './sidecar-config.js';

/**
 * Each route an earlier one shadows, with the first such earlier route: indexes into `routes`.
 * An earlier exact path covers the same exact path; an earlier prefix (`/a*`) covers every path
 * and prefix starting with it. Looked up by map, each route's prefixes against the earlier
 * prefixes: a check of each route against every earlier one grew with the square of the list
 * (27,000 routes, a 1 MiB config, held `meshcar check` 49 s and a reload's `/ready` for seconds).
 */
export function shadowedRoutes(routes: readonly { readonly path: string }[]): { index: number; by: number }[] {
  const shadowed: { index: number; by: number }[] = [];
  /** The first index of each exact path, and of each prefix (its text without the `*`). */
  const exact = new Map<string, number>();
  const prefixes = new Map<string, number>();
  routes.forEach((route, index) => {
    const wildcard = route.path.endsWith('*');
    const text = wildcard ? route.path.slice(0, -1) : route.path;
    let by = wildcard ? -1 : (exact.get(text) ?? -1);
    for (let end = 0; end <= text.length; end++) {
      const earlier = prefixes.get(text.slice(0, end));
      if (earlier !== undefined && (by < 0 || earlier < by)) by = earlier;
    }
    if (by >= 0) shadowed.push({ index, by });
    const seen = wildcard ? prefixes : exact;
    if (!seen.has(text)) seen.set(text, index);
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

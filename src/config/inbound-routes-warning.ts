// The warning for an `inbound.routes` entry that can never apply: the first route matching a
// path gives its timeouts (src/inbound/timeouts.ts), so a route after one that matches every
// path it matches (the same exact path twice, `/api/orders` or `/api/orders/*` after `/api/*`)
// is dead text, most likely written in the wrong order. A valid config still: the warning names
// both entries and says to put the narrower first. `meshcar check` prints it, the sidecar's
// start and each reload log it once (config-warnings.ts).

import type { SidecarConfig } from './sidecar-config.js';

/** Two polynomial hashes of a route's prefixes, taken a character at a time (Rabin-Karp). */
const BASE_1 = 131;
const BASE_2 = 137;
const MOD_1 = 2_147_483_647; // 2^31 - 1
const MOD_2 = 2_147_483_629;
/** A prefix's length goes in the key's low bits: a path has at most a 1 MiB config's characters. */
const LENGTH_SPAN = 2 ** 21;

/**
 * Each route an earlier one shadows, with the first such earlier route: indexes into `routes`.
 * An earlier exact path covers the same exact path; an earlier prefix (`/a*`) covers every path
 * and prefix starting with it. Each route's prefixes are looked up, by their hashes, among the
 * earlier prefixes: a check of each route against every earlier one grew with the square of the
 * list (27,000 routes, a 1 MiB config, held `meshcar check` 49 s and a reload's `/ready` for
 * seconds), and looking each prefix up as a string with the square of a path's length (64
 * paths of 16,000 characters: 13.5 s). One hash picks the entry, the other confirms it (a
 * wrong match by both is about one in 2^61).
 */
export function shadowedRoutes(routes: readonly { readonly path: string }[]): { index: number; by: number }[] {
  const shadowed: { index: number; by: number }[] = [];
  /** The first index of each exact path. */
  const exact = new Map<string, number>();
  /** The first index of each prefix (a route's text without its `*`), by its first hash and length; its second hash. */
  const prefixes = new Map<number, { index: number; check: number }[]>();
  routes.forEach((route, index) => {
    const wildcard = route.path.endsWith('*');
    const text = wildcard ? route.path.slice(0, -1) : route.path;
    let by = wildcard ? -1 : (exact.get(text) ?? -1);
    let h1 = 0;
    let h2 = 0;
    for (let end = 0; ; end++) {
      const found = prefixes.get(h1 * LENGTH_SPAN + end);
      if (found) for (const earlier of found) if (earlier.check === h2 && (by < 0 || earlier.index < by)) by = earlier.index;
      if (end === text.length) break;
      const c = text.charCodeAt(end);
      h1 = (h1 * BASE_1 + c) % MOD_1;
      h2 = (h2 * BASE_2 + c) % MOD_2;
    }
    if (by >= 0) shadowed.push({ index, by });
    if (!wildcard) {
      if (!exact.has(text)) exact.set(text, index);
      return;
    }
    const key = h1 * LENGTH_SPAN + text.length;
    const same = prefixes.get(key);
    if (!same) prefixes.set(key, [{ index, check: h2 }]);
    else if (!same.some((earlier) => earlier.check === h2)) same.push({ index, check: h2 });
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

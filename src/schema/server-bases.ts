// The base paths an OpenAPI document's `servers` put in front of its paths: what a call's path
// must start with to be one of the spec's operations (operation-index.ts strips it before
// matching). Each operation is served by its nearest `servers`: its own, else its path
// item's, else the document's (OpenAPI 3: the nearer list overrides the others).

import { canonicalPath } from '../http/canonical-path.js';

/**
 * `servers: [{url: https://api.example.com/v1}, {url: /v2}]` → ['/v1', '/v2']: the spec's
 * paths are relative to these. None (or only root URLs, or templated ones): [] (the root).
 */
export function basePathsOf(servers: unknown): string[] {
  if (!Array.isArray(servers)) return [];
  const bases = new Set<string>();
  for (const server of servers) {
    const url = (server as { url?: unknown } | null)?.url;
    if (typeof url !== 'string' || url.includes('{')) return [];
    let path: string;
    try {
      path = new URL(url, 'http://localhost').pathname.replace(/\/+$/, '');
    } catch {
      return [];
    }
    // a server at the root serves the paths as written: no prefix is required
    if (path === '') return [];
    bases.add(canonicalPath(path));
  }
  // longest first, so /api/v1 is tried before /api
  return [...bases].sort((a, b) => b.length - a.length);
}

/** The `servers` that serve an operation: the first list given (not empty) of its own, its path item's, the document's. */
export function nearestServers(operation: unknown, pathItem: unknown, document: unknown): unknown {
  return [operation, pathItem, document].map((holder) => (holder as { servers?: unknown } | null | undefined)?.servers).find((servers) => Array.isArray(servers) && servers.length > 0);
}

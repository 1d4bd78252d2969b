// The request target as authorization sees it: the path without its query, and a check that
// the path cannot mean something else to the app than it means to the rules. A path with
// dot segments (`/orders/../admin`, also percent-encoded or with backslashes) could pass a
// `/orders/*` rule and reach `/admin` once the app normalises it, so it is refused outright.

/** The path of an origin-form target (`/a/b?q` → `/a/b`); the asterisk form stays `*`. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

const ENCODED_DOT_OR_SLASH = /%2e|%2f|%5c/gi;

/**
 * True for a path the sidecar forwards: origin form (starts with '/') without dot segments,
 * or `*` (OPTIONS *). Fast path: most paths contain no "/.", "%" or "\" at all.
 */
export function isAcceptablePath(path: string): boolean {
  if (path.charCodeAt(0) !== 47 /* '/' */) return path === '*';
  if (path.indexOf('/.') === -1 && path.indexOf('%') === -1 && path.indexOf('\\') === -1) return true;
  const decoded = path.replace(ENCODED_DOT_OR_SLASH, (m) => (m[2] === 'e' || m[2] === 'E' ? '.' : '/')).replace(/\\/g, '/');
  for (const segment of decoded.split('/')) {
    if (segment === '.' || segment === '..') return false;
  }
  return true;
}

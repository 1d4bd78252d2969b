// A path pattern of `inbound.authorize[].paths` and `inbound.routes[].path`: an exact path, or a
// prefix ending in `*`, matched against the path as the caller sent it. A pattern no request can
// match is refused here rather than left to deny every caller in silence (a rule) or never
// apply (a route): one with non-ASCII characters, since a path arrives percent-encoded
// (`/caf%C3%A9`, never `/café`: the inbound holds a path one byte per character, so `é` in the
// YAML would match only a lone byte 0xE9, which no UTF-8 client sends), and one whose every
// match the inbound refuses with 400 before the rules (dot segments, `//` first, a raw `#`,
// malformed or double percent-encoding: see src/http/request-target.ts).

import { isAcceptablePath } from '../http/request-target.js';
import type { YamlValue } from './yaml-value.js';

/** `/orders`, or `/orders/*` for a prefix; undefined (with the issue reported) otherwise. */
export function readPathPattern(value: YamlValue): string | undefined {
  const text = value.string('a path (/orders, or /orders/* for a prefix)');
  if (text === undefined) return undefined;
  const quoted = JSON.stringify(text);
  if (!text.startsWith('/')) return value.report(`${quoted} must start with /`);
  if (/[?#\s]/.test(text)) return value.report(`${quoted} may not hold a query, fragment or spaces`);
  if (text.slice(0, -1).includes('*')) return value.report(`${quoted}: * may only come last, as in /orders/*`);
  if (/[^\x00-\x7f]/.test(text)) {
    const encoded = text.replace(/[^\x00-\x7f]+/g, (chars) => encodeURIComponent(chars));
    return value.report(`${quoted} holds characters a request path carries percent-encoded; write it as clients send it: ${encoded}`);
  }
  if (!matchesSomeAcceptablePath(text)) return value.report(`${quoted} can match no request: the inbound refuses such paths (dot segments, // first, malformed or double percent-encoding) with 400 before the rules`);
  return text;
}

/** Whether some path the inbound forwards is this pattern (exact), or starts with it (prefix). */
function matchesSomeAcceptablePath(pattern: string): boolean {
  if (!pattern.endsWith('*')) return isAcceptablePath(pattern);
  const prefix = pattern.slice(0, -1);
  // a prefix that stops inside an escape (`/a%`, `/a%2`) is completed by the path: not judged
  if (/%[0-9A-Fa-f]?$/.test(prefix)) return true;
  // `/a/.*` still matches `/a/.well-known`; `/a/../*` matches only paths with a `..` segment
  return isAcceptablePath(`${prefix}x`);
}

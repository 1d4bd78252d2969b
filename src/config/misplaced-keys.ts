// Where a key written at the wrong level goes: `authorize:` at the top of a sidecar config (it
// belongs under inbound), an upstream straight under outbound (`upstreams:` left out), `app:`
// slipped under identity by its indentation. The "unknown key" issue then says so, besides
// what is allowed where it stands; one a typo explains ("did you mean") is left as it is.

import { isMap, type Node } from 'yaml';
import type { ConfigIssue } from './issues.js';

/** A map of the config by where it stands (`outbound.upstreams.<name>`, `inbound.routes[]`), with its keys. */
export type Sections = Readonly<Record<string, readonly string[]>>;

const UNKNOWN = 'unknown key; ';

/**
 * `issues` with each unknown key that another section of `sections` takes told where it goes
 * (`unknown key here: it goes under inbound (inbound.authorize); allowed here: ...`). A lookup
 * per issue: a file of thousands of unknown keys costs no more than their listing.
 */
export function placeMisplacedKeys(issues: ConfigIssue[], sections: Sections, root: Node | null | undefined): void {
  const homes = homesByKey(sections);
  for (const [i, issue] of issues.entries()) {
    if (!issue.message.startsWith(UNKNOWN)) continue;
    const key = lastKey(issue.path);
    if (key === undefined) continue;
    const where = upstreamHint(issue.path, key, root) ?? homeHint(key, homes.get(key) ?? []);
    if (where !== undefined) issues[i] = { ...issue, message: `unknown key here: ${where}; ${issue.message.slice(UNKNOWN.length)}` };
  }
}

function homesByKey(sections: Sections): Map<string, string[]> {
  const homes = new Map<string, string[]>();
  for (const [section, keys] of Object.entries(sections)) {
    for (const key of keys) homes.set(key, [...(homes.get(key) ?? []), section]);
  }
  return homes;
}

/** The last key of a path written as `a.b.key` (a key that needs quoting in a path is no config key). */
function lastKey(path: string): string | undefined {
  return /(?:^|\.)([A-Za-z_][A-Za-z0-9_-]*)$/.exec(path)?.[1];
}

/** `outbound.orders: {endpoints: ..., identity: ...}`: an upstream missing its `upstreams:` level. */
function upstreamHint(path: string, key: string, root: Node | null | undefined): string | undefined {
  if (path !== `outbound.${key}` || !isMap(root)) return undefined;
  const value = root.getIn(['outbound', key], true);
  if (!isMap(value) || !(value.has('endpoints') || value.has('identity'))) return undefined;
  return `an upstream goes under outbound.upstreams (outbound.upstreams.${key})`;
}

function homeHint(key: string, homes: readonly string[]): string | undefined {
  if (homes.length === 0) return undefined;
  if (homes.length === 1) return `it goes under ${homes[0]} (${homes[0] === '' ? key : `${homes[0]}.${key}`})`;
  const named = homes.map((home) => (home === '' ? 'the top level' : home));
  return `it goes under ${named.slice(0, -1).join(', ')} or ${named[named.length - 1]}`;
}

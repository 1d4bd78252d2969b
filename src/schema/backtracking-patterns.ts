// The spec's regular expressions that V8's linear-time engine cannot run (linear-regexps.ts):
// lookarounds, backreferences, counted repetitions past about {1,16} and (in Node 20) those that
// need unicode mode, less those that run on RE2 instead (linear-regexps.ts). On what a caller
// sends they backtrack without bound when written with nested or overlapping repetition; the
// sidecar cannot tell which of them are, so each is
// named (file and JSON pointer) for the operator to review: `meshcar doctor` warns, a start or
// reload logs them at warn. Found where the document is read (the spec-loading thread), once
// per load: the walk and the engine's refusals cost time in proportion to the document.

import { pointerOf } from './spec-error.js';
import { linearTime, runsOnRe2 } from './linear-regexps.js';

export interface BacktrackingPattern {
  /** JSON pointer of the pattern inside the dereferenced document. */
  readonly pointer: string;
  readonly pattern: string;
}

/** The first LISTED_MAX of them, and how many there are in all. */
export interface BacktrackingPatterns {
  readonly listed: readonly BacktrackingPattern[];
  readonly total: number;
}

export const NO_BACKTRACKING_PATTERNS: BacktrackingPatterns = Object.freeze({ listed: Object.freeze([]), total: 0 });

/** Enough to review and to find the rest by; a spec with thousands would otherwise flood the log. */
export const LISTED_MAX = 20;

/** Keywords whose values are data, not schemas: a `pattern` in an example is never compiled. */
const DATA_KEYWORDS = new Set(['example', 'examples', 'default', 'enum', 'const']);

/** Maps whose keys are names (a property called `default`, a schema called `example`), not keywords. */
const NAME_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'schemas', 'parameters', 'responses', 'headers', 'content', 'paths', 'callbacks', 'requestBodies', 'pathItems', 'webhooks', 'encoding']);

/** Every `pattern` and `patternProperties` key in `doc` that only the backtracking engine can run. */
export function backtrackingPatterns(doc: unknown): BacktrackingPatterns {
  const listed: BacktrackingPattern[] = [];
  let total = 0;
  const verdicts = new Map<string, boolean>();
  const linear = (pattern: string): boolean => {
    let verdict = verdicts.get(pattern);
    if (verdict === undefined) verdicts.set(pattern, (verdict = linearTimeOrRe2(pattern)));
    return verdict;
  };
  const found = (pattern: string, path: ReadonlyArray<string | number>) => {
    total += 1;
    if (listed.length < LISTED_MAX) listed.push({ pointer: pointerOf(...path), pattern });
  };
  // a dereferenced document shares a $ref's target between its uses: each node is walked once
  const seen = new Set<object>();
  const walk = (node: unknown, path: Array<string | number>, keysAreNames: boolean): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...path, i], false));
      return;
    }
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (!keysAreNames) {
        if (DATA_KEYWORDS.has(key) || key.startsWith('x-')) continue;
        if (key === 'pattern' && typeof value === 'string' && !linear(value)) found(value, [...path, key]);
        if (key === 'patternProperties' && value !== null && typeof value === 'object') {
          for (const name of Object.keys(value)) if (!linear(name)) found(name, [...path, key, name]);
        }
      }
      walk(value, [...path, key], !keysAreNames && NAME_MAPS.has(key));
    }
  };
  walk(doc, [], false);
  return { listed, total };
}

/** Runs without backtracking far: on V8's linear-time engine, or on RE2 (linear-regexps.ts). */
function linearTimeOrRe2(pattern: string): boolean {
  return linearTime(pattern) || runsOnRe2(pattern);
}

// The spec's regular expressions that V8's linear-time engine cannot run (linear-regexps.ts):
// lookarounds, backreferences, and (in Node 20) those that need unicode mode. On what a caller
// sends they backtrack without bound when written with nested or overlapping repetition; the
// sidecar cannot tell which of them are, so each one is named (file and JSON pointer) for the
// operator to review: `meshcar doctor` warns, a start or reload logs them at warn.

import { pointerOf } from './spec-error.js';
import { NEEDS_UNICODE } from './linear-regexps.js';

export interface BacktrackingPattern {
  /** JSON pointer of the pattern inside the dereferenced document. */
  readonly pointer: string;
  readonly pattern: string;
}

/** Every `pattern` and `patternProperties` key in `doc` that only the backtracking engine can run. */
export function backtrackingPatterns(doc: unknown): BacktrackingPattern[] {
  const found: BacktrackingPattern[] = [];
  // a dereferenced document shares a $ref's target between its uses: each node is walked once
  const seen = new Set<object>();
  const walk = (node: unknown, path: Array<string | number>): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...path, i]));
      return;
    }
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'pattern' && typeof value === 'string' && !linearTime(value)) found.push({ pointer: pointerOf(...path, key), pattern: value });
      if (key === 'patternProperties' && value !== null && typeof value === 'object') {
        for (const name of Object.keys(value)) if (!linearTime(name)) found.push({ pointer: pointerOf(...path, key, name), pattern: name });
      }
      walk(value, [...path, key]);
    }
  };
  walk(doc, []);
  return found;
}

/** Compiled for the linear-time engine (the `l` flag): refused if it cannot run there; a pattern that is no regex at all is Ajv's to refuse. */
function linearTime(pattern: string): boolean {
  try {
    new RegExp(pattern, NEEDS_UNICODE.test(pattern) ? 'ul' : 'l');
    return true;
  } catch (err) {
    return !/linear time/i.test((err as Error).message);
  }
}

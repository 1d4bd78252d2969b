// Values a config wrote, as its issues quote them, cut to a bound: a 900 KB service name went
// whole into the one line `meshcar check` prints, into a reload's JSON answer and into its log
// line. Messages quote a value with JSON.stringify (or, for a number or a key path, as written);
// each such piece past the bound keeps its first characters and says how long it was (clip.ts).

import { clip } from '../clip.js';

/** The most of one quoted value a message keeps: far more than any valid value. */
export const QUOTED_VALUE_MAX = 200;

/** A JSON string literal: what JSON.stringify makes of a value. */
const QUOTED = /"(?:[^"\\]|\\.)*"/g;

/** `message` with each quoted value longer than QUOTED_VALUE_MAX cut, still quoted. */
export function clipQuotedValues(message: string): string {
  // nearly every message: nothing to cut, and no regex run
  if (message.length <= QUOTED_VALUE_MAX) return message;
  return message.replace(QUOTED, (quoted) => (quoted.length <= QUOTED_VALUE_MAX + 2 ? quoted : JSON.stringify(clip(JSON.parse(quoted) as string, QUOTED_VALUE_MAX))));
}

/** A value or key path written out bare (a number as written, `a["x.y"]`), cut as clip() cuts. */
export function clipBare(text: string): string {
  return clip(text, QUOTED_VALUE_MAX);
}

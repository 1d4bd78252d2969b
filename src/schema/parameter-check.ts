// One location's parameters (path, query or header values, strings as sent) against their
// validator, with the numbers read as every server behind reads them: written as decimals
// (number-syntax.ts), held to int64's range as sent (int64-range.ts), and, for a number no
// double holds (`?n=100.00000000000000000001`, read as 100 by the validator's Number()), checked
// again with it read as the double below it and the one above, as a body is (number-precision.ts):
// `maximum: 100` passed it, while a body with the same number was refused.

import type { ValidateFunction } from 'ajv';
import { nonDecimal, type NumericKind } from './number-syntax.js';
import { asJsonNumber, inexactOf, mayBeInexact, roundedNote, type InexactNumber } from './number-precision.js';
import { numbersSent } from './int64-range.js';
import { describeAjvError } from './violations.js';

type Location = 'path' | 'query' | 'header';

/** What is wrong with the values (`query/n: must be <= 100 ...`), or undefined. The validator coerces `values` in place. */
export function parameterProblem(location: Location, validate: ValidateFunction, values: Record<string, unknown>, numeric: ReadonlyMap<string, NumericKind>): string | undefined {
  const number = nonDecimal(location, values, numeric);
  if (number !== undefined) return number;
  // most values are short: no double misses them and none is near int64's ends (NumbersSent)
  if (!anyLong(values, numeric)) return validate(values) ? undefined : describeAjvError(location, validate.errors?.[0]);
  const texts = numericTexts(values, numeric);
  const sent = numbersSent(texts.map((t) => t.text));
  const inexact = texts.flatMap((t) => (t.inexact === undefined ? [] : [t.inexact]));
  // the readings are made before the validator coerces the values in place
  const readings = inexact.length === 0 ? [] : (['below', 'above'] as const).map((side) => ({ side, values: withNeighbours(values, texts, side) }));
  if (!validate.call(sent, values)) return describeAjvError(location, validate.errors?.[0]);
  for (const reading of readings) {
    if (!validate.call(sent, reading.values)) return describeAjvError(location, validate.errors?.[0]) + roundedNote(inexact, reading.side);
  }
  return undefined;
}

/** Whether a numeric value (or item) is as long as a number a double may miss (number-precision.ts longNumberTokens). */
function anyLong(values: Record<string, unknown>, numeric: ReadonlyMap<string, NumericKind>): boolean {
  for (const name of numeric.keys()) {
    const value = values[name];
    for (const text of Array.isArray(value) ? value : [value]) if (typeof text === 'string' && mayBeInexact(text)) return true;
  }
  return false;
}

interface NumericText {
  readonly name: string;
  /** Its place among the parameter's items; undefined for a single value. */
  readonly index: number | undefined;
  readonly text: string;
  /** The doubles around it when none holds it as sent. */
  readonly inexact: InexactNumber | undefined;
}

/** The text of every numeric value (or item) given. */
function numericTexts(values: Record<string, unknown>, numeric: ReadonlyMap<string, NumericKind>): NumericText[] {
  const found: NumericText[] = [];
  for (const name of numeric.keys()) {
    const value = values[name];
    const items = Array.isArray(value) ? value : [value];
    items.forEach((text, i) => {
      if (typeof text !== 'string') return;
      const inexact = inexactOf([{ start: 0, end: 0, text: asJsonNumber(text) }])[0];
      // quoted as sent in a refusal
      found.push({ name, index: Array.isArray(value) ? i : undefined, text, inexact: inexact === undefined ? undefined : { ...inexact, text } });
    });
  }
  return found;
}

/** A copy of the values with each number no double holds written as the double `side` it. */
function withNeighbours(values: Record<string, unknown>, texts: readonly NumericText[], side: 'below' | 'above'): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) copy[name] = Array.isArray(value) ? [...value] : value;
  for (const t of texts) {
    if (t.inexact === undefined) continue;
    const written = String(t.inexact[side]);
    if (t.index === undefined) copy[t.name] = written;
    else (copy[t.name] as unknown[])[t.index] = written;
  }
  return copy;
}

// OpenAPI's `format: int64` held to its range, -2^63 to 2^63-1, for the number as sent.
// ajv-formats only tests that the value is an integer: `99999999999999999999` passed, and an app
// reading a Java long or Go int64 failed on it or wrapped it round. The checks read doubles:
// 2^63-1 is none, and `9223372036854775807` (Long.MAX_VALUE, in range) parses as 2^63, as does
// `9223372036854775808` (out of it); below -2^63, `-9223372036854775809` parses as -2^63, in
// range. At those two doubles the check asks what the numbers sent that read as them (or have
// them as a neighbour: number-precision.ts) were: every validation is called with a NumbersSent
// (Ajv's passContext), made from the body's long number tokens or the parameters' text. A body
// with a number at one end in range and another beyond it is refused (which one the int64
// property holds is not known): the conservative reading.

import type { KeywordDefinition } from 'ajv';
import { asJsonNumber, compareNumbers } from './number-precision.js';

/** The keyword the request view adds beside each `format: int64` (request-view.ts). */
export const INT64_KEYWORD = 'x-meshcar-int64-range';

const TWO_63 = 2 ** 63;
/** int64's ends, exactly (no double holds the first). */
const INT64_MAX = '9223372036854775807';
const INT64_MIN = '-9223372036854775808';
/** How far from ±2^63 a double may be and still have it as a neighbour (the gap above 2^63 is 2048). */
const NEAR = 2048;

/** What one validation knows of the numbers as sent that read as ±2^63. */
export interface NumbersSent {
  /** Some number sent reads as 2^63, or has it as a neighbour, and every such one is at most 2^63-1. */
  readonly maxFits: boolean;
  /** Some number sent reads as -2^63, or has it as a neighbour, and is below -2^63. */
  readonly belowMin: boolean;
}

/** The NumbersSent of number texts (JSON numbers, or decimal parameter text). */
export function numbersSent(texts: readonly string[]): NumbersSent {
  let nearMax = false;
  let beyondMax = false;
  let belowMin = false;
  for (const sent of texts) {
    const value = Number(sent);
    if (!(Math.abs(value) >= TWO_63 - NEAR && Math.abs(value) <= TWO_63 + NEAR)) continue;
    const text = asJsonNumber(sent);
    if (value > 0) {
      nearMax = true;
      if (compareNumbers(text, INT64_MAX) > 0) beyondMax = true;
    } else if (compareNumbers(text, INT64_MIN) < 0) belowMin = true;
  }
  return { maxFits: nearMax && !beyondMax, belowMin };
}

/** The Ajv keyword: a number within int64's range as sent (see NumbersSent). */
export const int64Keyword: KeywordDefinition = {
  keyword: INT64_KEYWORD,
  type: 'number',
  schemaType: 'boolean',
  validate: function inInt64Range(this: NumbersSent | undefined, _schema: boolean, value: number): boolean {
    const fits = value === TWO_63 ? this?.maxFits === true : value === -TWO_63 ? this?.belowMin !== true : value > -TWO_63 && value < TWO_63;
    if (!fits) (inInt64Range as { errors?: unknown }).errors = [{ keyword: 'format', message: `must be an int64 (from ${INT64_MIN} to ${INT64_MAX})`, params: { format: 'int64' } }];
    return fits;
  },
};

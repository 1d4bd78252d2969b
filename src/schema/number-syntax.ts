// The text of a numeric parameter (path, query, header: strings until the validator coerces
// them) must be a decimal number as JSON writes one. Ajv coerces with JavaScript's Number(),
// which also reads `0x10`, `0b11`, `0o7`, `1e3` as integers and `Infinity` or `1e999` as a
// number: `?limit=0b11` passed `minimum: 1` as 3, and an app reading it with parseInt (most
// Express apps) or strconv.Atoi got 0 or an error; `?price=Infinity` passed `type: number`
// (JSON has no such number) and reached a Java or Python app as infinity. What the check reads
// as a number must be what every server behind reads: anything else is refused. A leading `+`
// (sent as %2B) is read alike by all of them; a space (a raw `+` in the query) is not (Go's
// Atoi and Java's parseInt refuse it, Number() skips it).

import { clip } from '../clip.js';
import { MAX_QUOTED } from './violations.js';
import { itemTypesOf, typesOf } from './schema-shape.js';

export type NumericKind = 'integer' | 'number';

const INTEGER = /^[-+]?[0-9]+$/;
const NUMBER = /^[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * `integer` or `number` for a schema of that type, or for an array of such items; undefined
 * otherwise (a string among its types: any text may be meant). Read through allOf, anyOf,
 * oneOf and the other subschemas Ajv coerces in (schema-shape.ts).
 */
export function numericKindOf(schema: unknown): NumericKind | undefined {
  const own = kindOfTypes(typesOf(schema));
  if (own !== 'array') return own;
  const items = kindOfTypes(itemTypesOf(schema));
  return items === 'array' ? undefined : items;
}

function kindOfTypes(types: ReadonlySet<string>): NumericKind | 'array' | undefined {
  if (types.has('string')) return undefined;
  if (types.has('number')) return 'number';
  if (types.has('integer')) return 'integer';
  return types.has('array') ? 'array' : undefined;
}

/** Why a named numeric value (or an item of one) is a number to Number() but not written as a decimal one; undefined when none is. */
export function nonDecimal(location: 'path' | 'query' | 'header', values: Record<string, unknown>, numeric: ReadonlyMap<string, NumericKind>): string | undefined {
  if (numeric.size === 0) return undefined;
  for (const [name, kind] of numeric) {
    const value = values[name];
    for (const text of Array.isArray(value) ? value : [value]) {
      if (typeof text !== 'string' || isDecimal(text, kind)) continue;
      return `${location}/${name}: ${clip(text, MAX_QUOTED)} is not written as a decimal ${kind} (${kind === 'integer' ? 'digits, signed or not' : 'as JSON writes numbers, signed or not'}; servers read hex, binary, exponents or Infinity otherwise)`;
    }
  }
  return undefined;
}

/** Decimal, or no number at all to Number() (`abc`: the validator refuses it in its own words). */
function isDecimal(text: string, kind: NumericKind): boolean {
  const value = Number(text);
  if (Number.isNaN(value) || text.trim() === '') return true;
  // a long enough run of digits is Infinity to Number() as well
  return (kind === 'integer' ? INTEGER : NUMBER).test(text) && Number.isFinite(value);
}

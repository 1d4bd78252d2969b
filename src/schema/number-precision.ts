// JSON numbers that a double cannot hold as sent. The check (Ajv, over JSON.parse) reads
// `100.000000000000000000001` as 100 and `9007199254740993` as 9007199254740992, while an app
// that reads numbers as decimals or 64-bit integers (Jackson's BigDecimal, Python's Decimal,
// Go's json.Number, int64 fields) reads the digits as sent: a `maximum: 100` passed by the
// check would not hold in the app. Such a number lies strictly between two adjacent doubles;
// the body is checked again with every such number read as the double below it, then as the
// one above: a bound, `integer` or `enum` that one of them misses is one the sent value may
// miss, and the body is refused. Numbers that no rule reads closely (ids beyond 2^53 without
// a bound) still pass. Only bodies whose text may hold such a number are scanned.

import { clip } from '../clip.js';
import { MAX_QUOTED } from './violations.js';

/** A number token of the body whose value no double holds: where it is, and the doubles around it. */
export interface InexactNumber {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly below: number;
  readonly above: number;
}

/** A number token of a JSON text: where it is and how it is written. */
export interface NumberToken {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/**
 * The text's number tokens (outside strings) of 16 characters or more, or with an exponent: the
 * only ones a double may not hold. `text` is valid JSON. One pass by character codes, ~1 ms a
 * MiB: the regular expression that used to say whether to scan at all backtracked on runs of
 * digits past V8's threshold, and on its linear-time engine (on for the process, see
 * linear-regexps.ts) took 0.8-1.9 s for 1 MiB of ordinary numbers, per request.
 */
export function longNumberTokens(text: string): NumberToken[] {
  const found: NumberToken[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote (a backslash escapes the next character)
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      let exponent = false;
      for (; end < text.length; end++) {
        const d = text.charCodeAt(end);
        if (!isNumberChar(d)) break;
        if (d === 0x65 || d === 0x45) exponent = true;
      }
      if (end - i > 15 || exponent) {
        const token = text.slice(i, end);
        // `1e1`, `2.5E-3`: a double holds it, and none is near ±2^63 (int64-range.ts: 15
        // digits there step by 10^4, the nearest 4,192 away); not kept (1 MiB of them is
        // 262,144 tokens, each read three times after this)
        if (!exponent || !heldByDouble(token, Number(token))) found.push({ start: i, end, text: token });
      }
      i = end - 1;
    }
  }
  return found;
}

/** Whether a number's text is long enough for a double to miss it: 15 characters without an exponent hold at most 15 digits, which a double always holds. */
export function mayBeInexact(text: string): boolean {
  return text.length > 15 || text.includes('e') || text.includes('E');
}

/** The tokens whose value no double holds, with the doubles around each. */
export function inexactOf(tokens: readonly NumberToken[]): InexactNumber[] {
  const found: InexactNumber[] = [];
  // a body may repeat one number many times (1 MiB of one inexact number: ~55,000 tokens):
  // each text is read once
  const seen = new Map<string, [number, number] | undefined>();
  for (const token of tokens) {
    const text = token.text;
    let inexact = seen.get(text);
    if (inexact === undefined && !seen.has(text)) {
      inexact = around(text);
      seen.set(text, inexact);
    }
    if (inexact !== undefined) found.push({ start: token.start, end: token.end, text, below: inexact[0], above: inexact[1] });
  }
  return found;
}

/** The body's numbers (outside strings) that a double does not hold as sent; [] for most bodies. `text` is valid JSON. */
export function inexactNumbers(text: string): InexactNumber[] {
  return inexactOf(longNumberTokens(text));
}

/** What a refusal adds when a rule failed only with the numbers no double holds read as the double `side` them. */
export function roundedNote(inexact: readonly InexactNumber[], side: 'below' | 'above'): string {
  const first = clip(inexact[0]?.text ?? '', MAX_QUOTED);
  return ` (with ${first}${inexact.length > 1 ? ' and the other numbers' : ''} read as the double ${side} it, as no double holds it as sent)`;
}

/** A decimal number as a parameter may write it (`+5`, `007`) in the form JSON writes it (`5`, `7`): what the readings here take. */
export function asJsonNumber(text: string): string {
  return text.replace(/^\+/, '').replace(/^(-?)0+(?=[0-9])/, '$1');
}

/** The body's text with each inexact number written as the double below it (`'below'`) or above it. */
export function withNeighbours(text: string, numbers: readonly InexactNumber[], side: 'below' | 'above'): string {
  const parts: string[] = [];
  let from = 0;
  for (const n of numbers) {
    parts.push(text.slice(from, n.start), JSON.stringify(n[side]));
    from = n.end;
  }
  parts.push(text.slice(from));
  return parts.join('');
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** The two adjacent doubles around the value of `token`, or undefined when a double holds it (as the shortest form of the parsed double reads). */
function around(token: string): [number, number] | undefined {
  const value = Number(token);
  if (!Number.isFinite(value)) return undefined; // refused before this: too large for a double
  if (heldByDouble(token, value)) return undefined;
  const shortest = String(value);
  if (shortest === token) return undefined; // what a serializer of doubles writes: held
  const order = value !== 0 && INTEGER.test(token) && INTEGER.test(shortest) ? compareIntegers(token, shortest) : compareDecimals(decimal(token), decimal(shortest));
  if (order === 0) return undefined;
  return order > 0 ? [value, nextDouble(value, 1)] : [nextDouble(value, -1), value];
}

/**
 * Whether a double holds `token` (whose value is `value`) by its form alone: at most 15
 * significant digits in a double's normal range (DBL_DIG: two such decimals never share a
 * double, so the double's shortest form is this value). The exact reading (around) costs
 * ~3 µs a number: 1 MiB of `1e1` took 0.3 s.
 */
function heldByDouble(token: string, value: number): boolean {
  const digits = significantDigits(token);
  // zero however written; `1e-400` reads as 0 too, and is not it
  return digits === 0 || (Number.isFinite(value) && Math.abs(value) >= MIN_NORMAL && digits <= 15);
}

/** The smallest positive normal double: below it a double holds fewer digits (subnormals). */
const MIN_NORMAL = 2.2250738585072014e-308;

/** How many digits a JSON number's mantissa holds from its first non-zero digit to its last (`0.0120e5`: 2). */
function significantDigits(token: string): number {
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 0x65 || c === 0x45) break; // the exponent
    if (c < 0x30 || c > 0x39) continue; // sign, point
    count++;
    if (c !== 0x30) {
      if (first === -1) first = count;
      last = count;
    }
  }
  return first === -1 ? 0 : last - first + 1;
}

/** -1, 0 or 1 as the exact value of the JSON number `a` is below, equal to or above that of `b`. */
export function compareNumbers(a: string, b: string): number {
  return compareDecimals(decimal(a), decimal(b));
}

/** A decimal as sign, significant digits (no leading or trailing zeros) and the exponent of a leading `0.`: value = ±0.digits × 10^exp. */
interface Decimal {
  readonly negative: boolean;
  readonly digits: string;
  readonly exp: number;
}

/** Reads a JSON number or a String(number) form (`1e+21`, `-1.5e-7`) exactly. */
function decimal(text: string): Decimal {
  const negative = text.charCodeAt(0) === 0x2d;
  const body = negative ? text.slice(1) : text;
  const e = body.search(/[eE]/);
  const mantissa = e === -1 ? body : body.slice(0, e);
  const exponent = e === -1 ? 0 : Number(body.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const whole = dot === -1 ? mantissa : mantissa.slice(0, dot);
  const all = dot === -1 ? mantissa : whole + mantissa.slice(dot + 1);
  const lead = all.search(/[1-9]/);
  if (lead === -1) return { negative: false, digits: '', exp: 0 }; // zero, -0 included
  // trailing zeros cut by a scan from the end: /0+$/ retries its match from every zero of a run
  // that is not trailing, quadratic in a long number's digits (1 MB of them: 90 s of event loop)
  let end = all.length;
  while (all.charCodeAt(end - 1) === 0x30) end--;
  const digits = all.slice(lead, end);
  return { negative, digits, exp: exponent + whole.length - lead };
}

/** An integer as JSON writes it (and String() below 1e21): the common case of ids past 2^53, compared without parsing. */
const INTEGER = /^-?[0-9]+$/;

/** -1, 0 or 1 as the integer a is below, equal to or above b (both as INTEGER reads them, of one sign: a double keeps the sign). */
function compareIntegers(a: string, b: string): number {
  const negative = a.charCodeAt(0) === 0x2d;
  const order = a.length !== b.length ? (a.length < b.length ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
  return negative ? -order : order;
}

/** -1, 0 or 1 as a is below, equal to or above b. */
function compareDecimals(a: Decimal, b: Decimal): number {
  const signA = a.digits === '' ? 0 : a.negative ? -1 : 1;
  const signB = b.digits === '' ? 0 : b.negative ? -1 : 1;
  if (signA !== signB) return signA < signB ? -1 : 1;
  if (signA === 0) return 0;
  let order = a.exp !== b.exp ? (a.exp < b.exp ? -1 : 1) : a.digits < b.digits ? -1 : a.digits > b.digits ? 1 : 0;
  // same digits with one a prefix of the other: the string comparison above already orders them
  if (signA < 0) order = -order;
  return order;
}

const FLOAT = new Float64Array(1);
const BITS = new BigInt64Array(FLOAT.buffer);

/** The double next to `value` toward +Infinity (direction 1) or -Infinity (-1). */
function nextDouble(value: number, direction: 1 | -1): number {
  if (value === 0) return direction * Number.MIN_VALUE;
  FLOAT[0] = value;
  // a double's bits read as an integer grow with its magnitude
  BITS[0] = (BITS[0] as bigint) + ((value > 0) === (direction > 0) ? 1n : -1n);
  return FLOAT[0] as number;
}

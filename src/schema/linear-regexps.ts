// A spec's regular expressions run on what callers send (`pattern` on parameters and JSON body
// strings, each path template's regex on the request path), and V8's engine backtracks: a
// pattern such as ^(a+)+$ takes exponential time on "aaaa…a!", a template with three
// parameters in one segment cubic time on a long segment; one request held the event loop for
// seconds to hours, and all traffic and the admin port with it. V8 has a linear-time engine it
// can switch an expression to once it has backtracked too much
// (--enable-experimental-regexp-engine-on-excessive-backtracks; after 50,000 backtracks by
// default): turned on here, for the process, when the schema layer loads. It takes
// expressions without the unicode flag only (Node 20's V8), so spec patterns are compiled
// without it unless they need it (\p{…}, \P{…}, \u{…}); and none with backreferences or
// lookarounds, which it does not implement (the README says so).
// Nor does that engine take a counted repetition whose body it would copy more than about 16
// times (`{1,17}` and beyond): such a pattern backtracked, and one that also repeats within the
// repetition or offers alternatives (`^(?:[a-zA-Z0-9]+[-_ ]?){1,20}$`) held a sidecar 5 s on
// 30 characters and a `!` (a review; each two more characters 3.6 times longer). Those run on
// RE2 (re2-wasm: linear time, 5-20 µs a test against V8's 0.05), in unicode mode (its only one:
// `.` is then a code point). One with a single repetition and no alternatives
// (`^[A-Z0-9]{1,32}$`) stays on V8: its backtracking is bounded by the repetition.

import v8 from 'node:v8';
import { createRequire } from 'node:module';
import type { RegExpEngine } from 'ajv/dist/types/index.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
// the `l` flag, by which backtracking-patterns.ts asks the linear engine whether it can run a
// pattern (nothing here compiles a pattern with it)
v8.setFlagsFromString('--enable-experimental-regexp-engine');

/** Escapes only unicode mode understands: without `u`, \p{L} would mean the letters "p{L}". */
export const NEEDS_UNICODE = /\\[pP]\{|\\u\{/;

/** Whether V8's linear-time engine can run `pattern` (the `l` flag); a pattern that is no regex at all is Ajv's to refuse. */
export function linearTime(pattern: string): boolean {
  try {
    new RegExp(pattern, NEEDS_UNICODE.test(pattern) ? 'ul' : 'l');
    return true;
  } catch (err) {
    return !/linear time/i.test((err as Error).message);
  }
}

/**
 * Whether a pattern can backtrack past what one repetition bounds: more than one quantifier
 * (`*`, `+`, `?`, `{…}`; a lazy `?` after one is part of it), or alternatives (`|`). Outside
 * character classes and escapes; conservative (a second quantifier beside the first counts).
 */
export function repeatsOrAlternates(pattern: string): boolean {
  let quantifiers = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '|') return true;
    else if (c === '*' || c === '+' || (c === '?' && i > 0 && pattern[i - 1] !== '(')) quantifiers += pattern[i - 1] === '*' || pattern[i - 1] === '+' || pattern[i - 1] === '?' || pattern[i - 1] === '}' ? 0 : 1;
    else if (c === '{' && /^\{\d+(,\d*)?\}/.test(pattern.slice(i, i + 24))) quantifiers++;
    if (quantifiers > 1) return true;
  }
  return false;
}

interface Re2Constructor {
  new (pattern: string, flags: string): { test(text: string): boolean };
}
let re2: Re2Constructor | undefined;

/** `pattern` on RE2, or undefined when RE2 does not take it (its syntax differs in places: V8 runs it then). */
function onRe2(pattern: string): { test(text: string): boolean } | undefined {
  try {
    // loaded with the first pattern that needs it (most specs have none)
    re2 ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: Re2Constructor }).RE2;
    return new re2(pattern, 'u');
  } catch {
    return undefined;
  }
}

/** Whether a pattern runs on RE2 (see the header): V8's linear engine refuses it, and it could backtrack far. */
export function runsOnRe2(pattern: string): boolean {
  return !linearTime(pattern) && repeatsOrAlternates(pattern) && onRe2(pattern) !== undefined;
}

/** Ajv's `code.regExp`: a spec pattern as a RegExp, in unicode mode only when it needs it, or on RE2 (see the header). */
export const specRegExp: RegExpEngine = Object.assign(
  (pattern: string, flags: string) => {
    const onRe2Engine = !linearTime(pattern) && repeatsOrAlternates(pattern) ? onRe2(pattern) : undefined;
    return onRe2Engine ?? new RegExp(pattern, NEEDS_UNICODE.test(pattern) ? flags : flags.replace('u', ''));
  },
  { code: 'specRegExp' },
);

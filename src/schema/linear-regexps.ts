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
// a character outside the BMP counts once there, twice on V8 without `u`), with JavaScript's
// `.`, `\s` and `\S` written out (forRe2). One with a single repetition and no alternatives
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
 * (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`; a `?` or `+` right after one modifies it), or
 * alternatives (`|`). Escapes and character classes are skipped whole (an escaped `+` is a
 * character, and a quantifier after it counts). Conservative: a second quantifier anywhere counts.
 */
export function repeatsOrAlternates(pattern: string): boolean {
  let quantifiers = 0;
  let inClass = false;
  let afterQuantifier = false;
  let afterOpenParen = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      afterQuantifier = afterOpenParen = false;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    let quantifier = false;
    if (c === '[') inClass = true;
    else if (c === '|') return true;
    else if (c === '*' || c === '+') quantifier = true;
    // `(?:`, `(?=`, `(?<name>`: group syntax, not a quantifier
    else if (c === '?') quantifier = !afterOpenParen;
    else if (c === '{') {
      const counted = /^\{\d+(?:,\d*)?\}/.exec(pattern.slice(i, i + 24));
      if (counted) {
        quantifier = true;
        i += counted[0].length - 1;
      }
    }
    if (quantifier && !afterQuantifier && ++quantifiers > 1) return true;
    afterQuantifier = quantifier;
    afterOpenParen = c === '(';
  }
  return false;
}

interface Re2Like {
  test(text: string): boolean;
}
interface Re2Constructor {
  new (pattern: string, flags: string): Re2Like;
}
let re2: Re2Constructor | undefined;

/**
 * JavaScript's meaning of `.`, `\s` and `\S` written out for RE2, whose `\s` is `[\t\n\f\r ]`
 * only and whose `.` stops at `\n` only: left as they were, `^(?:\S+,?){1,20}$` took a
 * no-break space that V8 refuses (a review). JavaScript's white space and line terminators:
 */
const JS_SPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

/**
 * `pattern` rewritten for RE2 with JavaScript's `.`, `\s`, `\S`; undefined when that cannot be
 * done faithfully, and V8 runs it: an `\S` inside a class, a class whose first character is `]`
 * (`[]`, `[^]`: empty and any in JavaScript, a literal `]` in RE2), `\c` (re2-wasm's own rewrite
 * of it is wrong) and `(` inside a class (re2-wasm rewrites `(?<` even there).
 */
export function forRe2(pattern: string): string | undefined {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      i++;
      if (next === 'c') return undefined;
      if (next === 's') out += inClass ? JS_SPACE : `[${JS_SPACE}]`;
      else if (next === 'S') {
        if (inClass) return undefined;
        out += `[^${JS_SPACE}]`;
      } else out += c + next;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      if (c === '(') return undefined;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      const first = pattern[i + 1] === '^' ? pattern[i + 2] : pattern[i + 1];
      if (first === ']') return undefined;
    }
    out += c === '.' ? '[^\\n\\r\\u2028\\u2029]' : c;
  }
  return out;
}

/**
 * One RE2 per pattern, for the process's life: re2-wasm's memory is fixed (16 MB) and nothing
 * frees what it compiled (no finaliser in Node 20), while Ajv asks for a pattern's expression
 * anew at every load: a review's 385th reload found it full, and the pattern back on V8. An RE2
 * without the g or y flag keeps no state between tests, so validators share it. Bounded, well
 * within that memory (~40 KB a pattern): a pattern that needs RE2 past MAX_RE2_PATTERNS, or
 * when its memory is spent, fails the load (a reload is refused whole, the running specs kept;
 * a start says so) rather than run on V8 unlisted (the spec-loading thread, with a memory of
 * its own, would judge it runs on RE2).
 */
const compiled = new Map<string, Re2Like | null>();
const MAX_RE2_PATTERNS = 200;

/** `pattern` on RE2 with JavaScript's meaning, or undefined when its syntax cannot be (then V8 runs it, and it is listed at load). */
function onRe2(pattern: string): Re2Like | undefined {
  const known = compiled.get(pattern);
  if (known !== undefined) return known ?? undefined;
  let rewritten: string | undefined;
  try {
    // JavaScript's own syntax only (RE2 takes \a, \z, [[:alpha:]] that mean other things here)
    new RegExp(pattern, 'u');
    rewritten = forRe2(pattern);
  } catch {
    rewritten = undefined;
  }
  if (rewritten === undefined) {
    compiled.set(pattern, null);
    return undefined;
  }
  if (compiled.size >= MAX_RE2_PATTERNS) throw new Error(`the pattern ${JSON.stringify(pattern)} needs the RE2 engine, which holds ${MAX_RE2_PATTERNS} patterns at most in this process: restart the sidecar to load this spec`);
  // loaded with the first pattern that needs it (most specs have none)
  re2 ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: Re2Constructor }).RE2;
  let made: Re2Like | null;
  try {
    made = new re2(rewritten, 'u');
  } catch (err) {
    // its memory spent: not a verdict on the pattern, never cached
    if ((err as Error).name === 'RuntimeError') throw new Error(`the pattern ${JSON.stringify(pattern)} needs the RE2 engine, whose memory is spent in this process: restart the sidecar to load this spec`);
    made = null;
  }
  compiled.set(pattern, made);
  return made ?? undefined;
}

/** Whether a pattern runs on RE2 (see the header): V8's linear engine refuses it, it could backtrack far, and RE2 can run it with JavaScript's meaning. */
export function runsOnRe2(pattern: string): boolean {
  if (linearTime(pattern) || !repeatsOrAlternates(pattern)) return false;
  try {
    return onRe2(pattern) !== undefined;
  } catch {
    // spent or full (the loading thread's own): Ajv's compile in the main thread says so
    return true;
  }
}

/** Ajv's `code.regExp`: a spec pattern as a RegExp, in unicode mode only when it needs it, or on RE2 (see the header). */
export const specRegExp: RegExpEngine = Object.assign(
  (pattern: string, flags: string) => {
    const onRe2Engine = !linearTime(pattern) && repeatsOrAlternates(pattern) ? onRe2(pattern) : undefined;
    return onRe2Engine ?? new RegExp(pattern, NEEDS_UNICODE.test(pattern) ? flags : flags.replace('u', ''));
  },
  { code: 'specRegExp' },
);

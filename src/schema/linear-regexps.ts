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

import v8 from 'node:v8';
import type { RegExpEngine } from 'ajv/dist/types/index.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
// the `l` flag, by which backtracking-patterns.ts asks the linear engine whether it can run a
// pattern (nothing here compiles a pattern with it)
v8.setFlagsFromString('--enable-experimental-regexp-engine');

/** Escapes only unicode mode understands: without `u`, \p{L} would mean the letters "p{L}". */
export const NEEDS_UNICODE = /\\[pP]\{|\\u\{/;

/** Ajv's `code.regExp`: a spec pattern as a RegExp, in unicode mode only when it needs it. */
export const specRegExp: RegExpEngine = Object.assign((pattern: string, flags: string) => new RegExp(pattern, NEEDS_UNICODE.test(pattern) ? flags : flags.replace('u', '')), {
  code: 'specRegExp',
});

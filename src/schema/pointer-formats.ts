// OpenAPI's `format: json-pointer` (RFC 6901) and `relative-json-pointer` checked in one pass.
// ajv-formats' expressions (/^(?:\/(?:[^~/]|~0|~1)*)*$/ and its relative form) backtrack on a
// long string that fails near its end; past V8's threshold they run on its linear-time engine
// (on for the process, linear-regexps.ts), which took 250-350 ms per MiB: one caller's 1 MiB
// pointer held the event loop that long per request (the regex-cost review). These accept what
// those expressions accept (test/schema/pointer-formats.test.ts compares them).

/** Whether every `~` of `text` from `start` on is followed by `0` or `1` (RFC 6901's escapes). */
function escapesValid(text: string, start: number): boolean {
  for (let i = text.indexOf('~', start); i !== -1; i = text.indexOf('~', i + 1)) {
    const next = text.charCodeAt(i + 1);
    if (next !== 0x30 && next !== 0x31) return false;
  }
  return true;
}

/** RFC 6901: empty, or reference tokens each after a `/`, a `~` only as `~0` or `~1`. */
export function isJsonPointer(text: string): boolean {
  return (text === '' || text.charCodeAt(0) === 0x2f) && escapesValid(text, 0);
}

/** A non-negative integer without leading zeros, then `#` or a JSON pointer. */
export function isRelativeJsonPointer(text: string): boolean {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  if (i === 0 || (i > 1 && text.charCodeAt(0) === 0x30)) return false;
  if (i === text.length - 1 && text.charCodeAt(i) === 0x23) return true;
  return (i === text.length || text.charCodeAt(i) === 0x2f) && escapesValid(text, i);
}

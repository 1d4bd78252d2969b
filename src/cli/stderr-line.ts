// A failure's message made into the one stderr line the command line promises. Messages quote
// what they found: JSON.parse's reason quotes the file it could not read ("garbage\nline two"
// in a state.json made its refusal three lines), and a path or file name may hold control
// characters (ESC, which a terminal acts on; CR, which rewrites the line shown). Each is
// written as an escape, as JSON writes it (\n, \r, \u001b), so the line shows what is there;
// so are the characters log-escape.ts escapes in log lines (C1 controls, bidi overrides).

import { escapeUnits, UNSAFE_CLASS } from '../log-escape.js';

// The C0 controls but tab, and every character log lines escape (their list was once a copy
// that stopped at the bidi controls: U+200B, U+FEFF and the tag characters went raw to stderr)
const UNSAFE = new RegExp(`[\\u0000-\\u0008\\u000a-\\u001f${UNSAFE_CLASS}]`, 'gu');
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r' };
/**
 * Invisible, but part of how text is read where they stand: the zero-width non-joiner and
 * joiner between letters (Persian and Hindi words) or emoji (sequences), and the emoji and text
 * style selectors after a symbol or emoji. A log line escapes them too, and its JSON reads back
 * the same text; on a terminal the escape is what a user reads (a Persian file name in a path
 * came out as `\u200c`), so stderr leaves them there, and escapes them anywhere else (after
 * `svc/admin` they would make another name look the same).
 */
const JOINED = /[\p{L}\p{M}\p{Extended_Pictographic}]/u;
const STYLED = /[\p{Extended_Pictographic}\p{S}\p{N}]/u;

/** The character (code point) that ends just before `at`, or '' at the start. */
function characterBefore(text: string, at: number): string {
  const unit = text.charCodeAt(at - 1);
  // the second half of a surrogate pair (an emoji): its character starts one unit earlier
  const start = unit >= 0xdc00 && unit <= 0xdfff && at >= 2 ? at - 2 : at - 1;
  return start < 0 ? '' : String.fromCodePoint(text.codePointAt(start) as number);
}

function readableHere(c: string, text: string, at: number): boolean {
  const before = characterBefore(text, at);
  if (c === '\ufe0e' || c === '\ufe0f') return STYLED.test(before);
  if (c !== '\u200c' && c !== '\u200d') return false;
  const next = text.codePointAt(at + 1);
  return JOINED.test(before) && next !== undefined && JOINED.test(String.fromCodePoint(next));
}

/** `text` on one line, with nothing a terminal would act on (a tab stays). */
export function stderrLine(text: string): string {
  return text.replace(UNSAFE, (c: string, at: number) => SHORT[c] ?? (readableHere(c, text, at) ? c : escapeUnits(c)));
}

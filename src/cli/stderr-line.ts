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
 * Invisible, but part of how text is read: the zero-width non-joiner and joiner (Persian and
 * Hindi words, emoji sequences) and the emoji and text style selectors. A log line escapes them
 * too, and its JSON reads back the same text; on a terminal the escape is what a user reads
 * (a Persian file name in a path came out as `\u200c`), so stderr leaves them as they are.
 */
const READABLE: ReadonlySet<string> = new Set(['\u200c', '\u200d', '\ufe0e', '\ufe0f']);

/** `text` on one line, with nothing a terminal would act on (a tab stays). */
export function stderrLine(text: string): string {
  return text.replace(UNSAFE, (c) => SHORT[c] ?? (READABLE.has(c) ? c : escapeUnits(c)));
}

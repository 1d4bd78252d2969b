// The last step of every log line before stdout: characters a terminal or a log viewer acts on
// that JSON leaves as they are, written as \uXXXX escapes. pino (JSON) escapes C0 controls
// (CR, LF, ESC) already; DEL, the C1 controls (U+0080-U+009F: 0x9B is CSI, a terminal's escape
// sequence in one byte), the line separators (U+2028/9) and the format characters (Unicode's
// Cf: the bidirectional controls, text shown in another order than written, "Trojan Source";
// the zero-width and invisible ones; the tag characters) are valid JSON and were written raw. A peer chooses some of what is logged: an HTTP/2 :path
// carries raw bytes 0x80-0xFF (the access log's path), a certificate's subject any Unicode (the
// TLS failure lines). Every such character sits inside a JSON string, so the line stays the
// same JSON value. The admin port's and the CA's JSON answers (http/status.ts sendJson) go
// through it too: curl prints GET /debug/tls, which quotes certificates, on a terminal.

// Cf, Unicode's format characters: every bidirectional control, the zero-width and invisible
// ones, the tag characters (U+E0000-E007F: text a viewer does not show, "ASCII smuggling");
// and every other character Unicode says a viewer need not show (Default_Ignorable_Code_Point):
// the variation selectors (U+FE00-FE0F, U+E0100-E01EF: "emoji smuggling"), the Hangul fillers
// (U+115F, U+1160, U+3164, U+FFA0), U+034F, U+17B4-5, U+180B-F, the unassigned ones of the tag
// block and U+FFF0-FFF8. The class is shared with the command line's stderr lines (stderr-line.ts).
export const UNSAFE_CLASS = '\\u007f-\\u009f\\u2028\\u2029\\p{Cf}\\p{Default_Ignorable_Code_Point}';
const UNSAFE = new RegExp(`[${UNSAFE_CLASS}]`, 'u');
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');
/** Every unsafe character is above U+007E: a line of printable ASCII (most) is passed by one cheap test. */
const BEYOND_ASCII = /[^\x00-\x7e]/;

/** Each UTF-16 unit of `c` as \uXXXX (a tag character is two: JSON's own escape of it). */
export function escapeUnits(c: string): string {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** The line with every unsafe character escaped; the same string when there is none (the usual case: one regex test). */
export function escapeUnsafe(line: string): string {
  return BEYOND_ASCII.test(line) && UNSAFE.test(line) ? line.replace(UNSAFE_ALL, escapeUnits) : line;
}

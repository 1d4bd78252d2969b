// The last step of every log line before stdout: characters a terminal or a log viewer acts on
// that JSON leaves as they are, written as \uXXXX escapes. pino (JSON) escapes C0 controls
// (CR, LF, ESC) already; DEL, the C1 controls (U+0080-U+009F: 0x9B is CSI, a terminal's escape
// sequence in one byte), the bidirectional controls and line separators (U+061C, U+200E/F,
// U+2028/9, U+202A-E, U+2066-9: text shown in another order than written, "Trojan Source"),
// and the invisible word joiners and byte-order mark (U+2060-4, U+FEFF) are valid JSON and
// were written raw. A peer chooses some of what is logged: an HTTP/2 :path
// carries raw bytes 0x80-0xFF (the access log's path), a certificate's subject any Unicode (the
// TLS failure lines). Every such character sits inside a JSON string, so the line stays the
// same JSON value. The admin port's and the CA's JSON answers (http/status.ts sendJson) go
// through it too: curl prints GET /debug/tls, which quotes certificates, on a terminal.

const UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

function escape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** The line with every unsafe character escaped; the same string when there is none (the usual case: one regex test). */
export function escapeUnsafe(line: string): string {
  return UNSAFE.test(line) ? line.replace(UNSAFE_ALL, escape) : line;
}

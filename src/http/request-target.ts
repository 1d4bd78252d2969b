// The request target as authorization (and the OpenAPI check) sees it: the path without its query, and a check that
// the path cannot mean something else to the app than it means to the rules. Rules match the
// raw path by prefix; the app may strip `;params` from each segment (Tomcat, Spring, Jetty),
// percent-decode once or twice, read `\` or an encoded slash as `/`, and then resolve dot
// segments, after Unicode normalisation (NFKC) or Windows' best-fit conversion for some. Any
// path on which those readings could move it out of the prefix it matched (`/public/..;/admin`,
// `/public/%2e%2e/admin`, `/public/%252e%252e/admin`, `/public/‥/admin`) is refused outright,
// and so is anything a lenient decoder could turn into a dot or a slash, and a raw `#` or a raw
// character outside ASCII.

/** The path of an origin-form target (`/a/b?q` → `/a/b`); the asterisk form stays `*`. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * What sends a path down the slow path: a dot after a slash, a percent sign, a backslash, a
 * semicolon, a `#`, a non-ASCII character (HTTP/2 lets raw bytes through as latin1), or a leading `//`.
 * One regular expression costs what three indexOf calls cost, and most paths match none of it.
 */
/** Why a target holding a raw `#` is refused, in the path or (inbound) the query. */
const FRAGMENT_PROBLEM = 'it holds a # (a fragment is not sent)';

/**
 * What the inbound refuses in a target beyond its path (pathProblem): a raw `#` or a raw
 * character outside ASCII in the query. HTTP/2 carries both as they are; an app reading the
 * target as a URL drops what follows a `#`, and a strict one (Node's parser) answers a bare
 * 400 to the other, which told the caller nothing.
 */
export function queryProblem(target: string): string | undefined {
  const q = target.indexOf('?');
  if (q === -1) return undefined;
  if (target.indexOf('#', q) !== -1) return FRAGMENT_PROBLEM;
  // on every request with a query: one native scan from the `?`, not a loop in JavaScript
  RAW_NON_ASCII.lastIndex = q;
  return RAW_NON_ASCII.test(target) ? 'its query holds a raw character outside ASCII (send it percent-encoded as UTF-8: %C3%A9 for é)' : undefined;
}

const RAW_NON_ASCII = /[\u0080-\uffff]/g;

const NEEDS_A_CLOSER_LOOK = /[%\\;#\u0080-\uffff]|\/\.|^\/\//;

/**
 * `%25` (an encoded `%`) in front of an encoded dot, slash or backslash, or of IIS's `u002e`
 * form: double encoding, which no client needs and which an app that decodes twice reads as
 * `.`, `/` or `\`.
 * Repeated `%25` (triple encoding) counts too.
 */
const DOUBLE_ENCODED = /%25(?:25)*(?:2e|2f|5c|u[0-9a-f]{4})/i;

/** A segment name of dots and spaces only, with a dot (`.` and `..` are told as dot segments first). */
const DOTS_AND_SPACES = /^[. ]*\.[. ]*$/;

/** IIS's own escape, `%u` and four hex digits. */
const IIS_U = /%u[0-9a-f]{4}/i;

/** Apps that decode more than three times are not worth a slower check. */
const MAX_DECODES = 3;

/**
 * True for a path the sidecar forwards: origin form (starts with '/') whose meaning no
 * normalising app can change, or `*` (OPTIONS *).
 */
export function isAcceptablePath(path: string): boolean {
  return pathProblem(path) === undefined;
}

/**
 * What makes a path one the sidecar refuses, in words its sender can act on (a control
 * character is named, not told as a dot segment); undefined for one it forwards.
 */
export function pathProblem(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47 /* '/' */) return path === '*' ? undefined : 'it does not start with /';
  if (!NEEDS_A_CLOSER_LOOK.test(path)) return undefined;
  return problemWithin(path, 0);
}

/**
 * pathProblem's slow path. `depth` 1: a path made by reading look-alike characters
 * (normalisedProblem), whose non-ASCII characters are the UTF-8 the app's own decoding made.
 */
function problemWithin(path: string, depth: number): string | undefined {
  // a fragment is never part of a request target (RFC 9112 §3.2), yet Node's parser and both
  // HTTP/2 codecs pass a raw `#` on, and an app that parses the target as a URL (Express,
  // `new URL`) drops it and all that follows: `/orders/mine#x` was checked as `/orders/{id}`
  // (and matched rules as written) and served as `/orders/mine`
  if (path.indexOf('#') !== -1) return FRAGMENT_PROBLEM;
  if (DOUBLE_ENCODED.test(path)) return 'it holds a double-encoded dot, slash or backslash (%25 before %2E, %2F, %5C or a %u form)';
  // (a first reading refuses a % without two hex digits; one made by look-alikes, `％u002e`, is read on)
  if (depth > 0 && IIS_U.test(path)) return "it holds IIS's %u form (%u002e is .)";
  // the path as an app sees it after decoding once, and again for an app that decodes twice
  // (`%253b` is `;` to it, `%2500` NUL): every reading must be plain
  let text = path;
  for (let decodes = 1; decodes <= MAX_DECODES; decodes++) {
    const decoded = percentDecode(text, decodes === 1 && depth === 0);
    const problem = typeof decoded === 'string' ? segmentsProblem(decoded) ?? normalisedProblem(decoded, depth) : decoded.problem;
    if (problem !== undefined) return decodes === 1 ? problem : `${problem}, once decoded ${decodes === 2 ? 'twice' : `${decodes} times`}`;
    if (decoded === text || (decoded as string).indexOf('%') === -1) return undefined;
    text = decoded as string;
  }
  return undefined;
}

/**
 * Why the segments are not plain: a dot segment, or a leading empty segment, with `\` read as
 * `/` and each segment's `;params` cut off. The text holds one byte per character; only ASCII
 * matters here.
 */
function segmentsProblem(text: string): string | undefined {
  const segments = text.replace(/\\/g, '/').split('/');
  for (let i = 1; i < segments.length; i++) {
    const name = nameOf(segments[i] as string);
    if (name === '.' || name === '..') return 'it holds a dot segment (. or .., also encoded, with ;params or \\ for /)';
    // Windows (IIS, and any app that opens files there) trims trailing dots and spaces from a
    // name: `..%20`, `...` and `. .` are `..` or `.` to it
    if (DOTS_AND_SPACES.test(name)) return 'it holds a segment of dots and spaces only (`.. `, `...`), which Windows reads as a dot segment';
    // `//host/x` (or `/\host/x`, `/%2fhost/x`, `/;p/host/x`) is a network-path reference to
    // URL parsers: the app may take `host` for a host name and the rest for the path
    if (i === 1 && name === '' && segments.length > 2) return 'it has an empty first segment (// first: URL parsers read the next segment as a host)';
  }
  return undefined;
}

/**
 * Why a reading holding non-ASCII bytes is not plain once read as an app that normalises it
 * would (NFKC, as Python's and Java's web stacks apply it, or Windows' best-fit conversion):
 * `‥` (U+2025) and `︰` are `..` to it, `․` and `﹒` `.`, `…` `...`, `＼` and `﹨` `\`, `／`,
 * `∕` and `⁄` `/`, `∖` `\` (and `¥`, `₩` on Japanese and Korean Windows), `％` and `٪` a `%`,
 * and `２`, `²` or `ｅ` the hex digits after one (`％２ｅ`, `%25２ｅ`): a reading holding a `%` is
 * judged again whole. A name merely holding such a character (`東京．駅`, `何？`) is fine: only
 * what the path's segments become counts, and a new `/` or `\` moves the segments a rule or an
 * OpenAPI check saw (`/orders/a／b` is `/orders/{id}` to them), so that is refused. Each
 * character is normalised on its own: normalising the whole path cost time growing with the
 * square of its length (ICU reorders long runs of combining marks pairwise: 6 ms for a 16 KiB
 * path, 1.6 s for 256 KiB); no composition makes ASCII, so the reading is the same.
 */
function normalisedProblem(text: string, depth: number): string | undefined {
  if (!NON_ASCII.test(text)) return undefined;
  const utf8 = Buffer.from(text, 'latin1').toString('utf8');
  let read = '';
  for (const char of utf8) {
    const cp = char.codePointAt(0) as number;
    read += cp < 0x80 ? char : (BEST_FIT[cp] ?? char.normalize('NFKC'));
  }
  const judged = read.replace(BEST_FIT_BACKSLASHES, '\\');
  if (judged === utf8) return undefined;
  const told = (problem: string) => `${problem}, once its characters are read as normalisation (NFKC) or Windows' best fit reads them (%E2%80%A5 is .., %EF%BC%8F is /)`;
  if (countOf(read, SEPARATORS) > countOf(utf8, SEPARATORS)) return told('it holds a character read as / or \\');
  const problem = segmentsProblem(judged);
  if (problem !== undefined) return told(problem);
  // a `%` in the reading (made, or before made hex digits): the text is a path to judge whole
  // again (`％252e`, `％u002e`, `%25２ｅ`), once more at most
  if (read.indexOf('%') === -1 || depth >= 1) return undefined;
  const again = problemWithin(Buffer.from(read, 'utf8').toString('latin1'), depth + 1);
  return again === undefined ? undefined : told(again);
}

const NON_ASCII = /[\u0080-\u00ff]/;
const SEPARATORS = /[/\\]/g;
/** Windows' best fit (code page 1252) beyond NFKC: `∕` and `⁄` are `/`, `∖` a backslash, `٪` `%`. */
const BEST_FIT: Readonly<Record<number, string>> = { 0x2215: '/', 0x2044: '/', 0x2216: '\\', 0x066a: '%' };
/** `¥` and `₩`, which Windows' best fit reads as `\` on Japanese and Korean code pages (refused only where that makes a dot segment: a price is no path). */
const BEST_FIT_BACKSLASHES = /[\u00a5\u20a9]/g;

function countOf(text: string, chars: RegExp): number {
  return text.match(chars)?.length ?? 0;
}

/**
 * The part of a segment before `;`, `?` or `#`: its name to Tomcat, Spring and Jetty (`..;x=1`
 * is `..`), and to an app that decodes the path and then parses it as a URL (`..%3f` is `..`
 * and a query to it).
 */
function nameOf(segment: string): string {
  let end = segment.length;
  for (const stop of [';', '?', '#']) {
    const at = segment.indexOf(stop);
    if (at !== -1 && at < end) end = at;
  }
  return end === segment.length ? segment : segment.slice(0, end);
}

/** The names of the control characters a sender most likely put in by mistake. */
const CONTROL_NAMES: Readonly<Record<number, string>> = { 0x00: 'NUL', 0x09: 'tab', 0x0a: 'LF', 0x0d: 'CR', 0x7f: 'DEL' };

function controlProblem(byte: number): string {
  const hex = `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  const name = CONTROL_NAMES[byte];
  return `it holds the control character ${hex}${name === undefined ? '' : ` (${name})`}`;
}

/**
 * The text with every `%XX` decoded, one byte per character; a problem when a decoded byte is
 * a control character (NUL truncates the path in C code, CR/LF split log lines and headers) or
 * starts an overlong UTF-8 form. `strict` (the first decoding, the one HTTP defines): also
 * one when a `%` is not followed by two hex digits (IIS's `%u002e` among them) or a raw
 * character is outside ASCII. Later decodings keep a stray `%` as the text it is, and the bytes
 * the first one decoded (UTF-8) as they are.
 */
function percentDecode(text: string, strict: boolean): string | { readonly problem: string } {
  const bytes = Buffer.allocUnsafe(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let byte = text.charCodeAt(i);
    // RFC 3986 has no raw byte above 0x7F in a URI; HTTP/2 carries one in :path as it is, and a
    // strict app (Node's parser) refused it and closed the connection, which read as a broken
    // pooled connection: the request went to the app twice and the caller was told 502
    if (strict && byte >= 0x80) return { problem: 'it holds a raw character outside ASCII (send it percent-encoded as UTF-8: %C3%A9 for é)' };
    if (byte === 37 /* '%' */) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high !== -1 && low !== -1) {
        byte = high * 16 + low;
        i += 2;
      } else if (strict) return { problem: 'it holds a % not followed by two hex digits (a literal % is %25)' };
    }
    if (byte < 0x20 || byte === 0x7f) return { problem: controlProblem(byte) };
    bytes[n++] = byte;
  }
  const decoded = bytes.subarray(0, n);
  return hasOverlongUtf8(decoded) ? { problem: 'it holds an overlong UTF-8 form (such as %C0%AE, which lenient decoders read as .)' } : decoded.toString('latin1');
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87; // a-f
  return -1;
}

/**
 * Overlong UTF-8 (`%c0%ae` for `.`, `%c0%af` for `/`): never valid, and a lenient decoder
 * (Tomcat, CVE-2008-2938) reads it as the ASCII character it spells. C0 and C1 only start
 * overlong forms; E0 80-9F and F0 80-8F start overlong three- and four-byte forms.
 */
function hasOverlongUtf8(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 0xc0) continue;
    if (b === 0xc0 || b === 0xc1) return true;
    const next = bytes[i + 1] ?? 0;
    if (b === 0xe0 && next >= 0x80 && next <= 0x9f) return true;
    if (b === 0xf0 && next >= 0x80 && next <= 0x8f) return true;
  }
  return false;
}

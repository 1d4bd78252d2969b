// OpenAPI's `format: url` checked in time linear in the string. ajv-formats' check is one
// regular expression (dperini's URL pattern) whose optional user part `\S+(?::\S*)?@` is tried
// from every position: on `http://` and 64,000 colons it took 3.5 s of the event loop per request
// (square in the length; ~15 minutes for a 1 MiB body), and with its `u` flag and lookaheads
// V8's linear-time fallback cannot take it. This accepts what that expression accepts
// (test/schema/url-format.test.ts compares the two on generated strings): http, https or ftp;
// an optional user part; a public IPv4 address or a name with a top-level label of two letters
// or more; an optional port of 2-5 digits; an optional path from the first `/`; no white space.
// Two differences, both refusals: white space in a host name (the expression's label class,
// \u00a1-\uffff, takes U+3000, U+FEFF, U+2028 and other Unicode spaces there), and a scheme
// spelt with a character that only folds to an ASCII letter (its iu flags read `httpſ` as https).

const SCHEME = /^(?:https?|ftp):\/\//i;
const WHITE_SPACE = /\s/u;
const PORT = /^\d{2,5}$/;
// each applied to one dot-separated piece of at most three characters (checked before)
const FIRST_OCTET = /^(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])$/;
const MIDDLE_OCTET = /^(?:1?\d{1,2}|2[0-4]\d|25[0-5])$/;
const LAST_OCTET = /^(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4])$/;
// a name's label: runs of letters, digits or non-ASCII characters joined by single hyphens (no
// nested quantifier can take the same character two ways: linear)
const LABEL = /^[a-z0-9\u{00a1}-\u{ffff}]+(?:-[a-z0-9\u{00a1}-\u{ffff}]+)*$/iu;
const TOP_LABEL = /^[a-z\u{00a1}-\u{ffff}]{2,}$/iu;

/** Whether `text` is a URL as ajv-formats' `url` format has it, in one pass or a few. */
export function isUrl(text: string): boolean {
  const scheme = SCHEME.exec(text);
  if (scheme === null) return false;
  const rest = text.slice(scheme[0].length);
  if (WHITE_SPACE.test(rest)) return false;
  // the authority is what comes before the first `/` after the user part; a user part ends at
  // an `@` with no `@` between it and that `/` (host and port hold neither): one candidate per
  // `/`-separated piece, each piece looked at once
  let start = 0;
  for (;;) {
    const slash = rest.indexOf('/', start);
    const end = slash === -1 ? rest.length : slash;
    const piece = rest.slice(start, end);
    if (start === 0 && isHostPort(piece)) return true;
    // within the piece only (a search back to the start would be square in the length); the
    // user part is not empty: an `@` first is no user part
    const at = piece.lastIndexOf('@');
    if (at !== -1 && start + at > 0 && isHostPort(piece.slice(at + 1))) return true;
    if (slash === -1) return false;
    start = slash + 1;
  }
}

function isHostPort(authority: string): boolean {
  const colon = authority.indexOf(':');
  if (colon === -1) return isHost(authority);
  return PORT.test(authority.slice(colon + 1)) && isHost(authority.slice(0, colon));
}

function isHost(host: string): boolean {
  const labels = host.split('.');
  return isPublicIpv4(labels) || isName(labels);
}

function isPublicIpv4(octets: readonly string[]): boolean {
  if (octets.length !== 4 || octets.some((octet) => octet.length > 3)) return false;
  const [first, second, third, last] = octets as [string, string, string, string];
  if (!FIRST_OCTET.test(first) || !MIDDLE_OCTET.test(second) || !MIDDLE_OCTET.test(third) || !LAST_OCTET.test(last)) return false;
  // the ranges the expression's lookaheads leave out: private, loopback and link-local
  if (first === '10' || first === '127') return false;
  if ((first === '169' && second === '254') || (first === '192' && second === '168')) return false;
  return !(first === '172' && /^(?:1[6-9]|2\d|3[01])$/.test(second));
}

function isName(labels: readonly string[]): boolean {
  if (labels.length < 2) return false;
  const top = labels[labels.length - 1] as string;
  if (!TOP_LABEL.test(top)) return false;
  for (let i = 0; i < labels.length - 1; i++) if (!LABEL.test(labels[i] as string)) return false;
  return true;
}

// Whether a JSON body's Content-Type says UTF-8 to every reader of its parameters. The check
// validates the bytes as UTF-8 (RFC 8259 §8.1); an app that decodes the body in the charset
// the header names (Spring does, Latin-1 included) reads another document: `é` (C3 A9) is
// `Ã©` to it, past a maxLength, a pattern or an enum. The first `charset=` found by a search
// was taken: `charset=utf-8; charset=iso-8859-1` passed, and a parser that keeps the last
// (Spring's, the npm content-type package's) reads Latin-1; so did `x="; charset=utf-8";
// charset=iso-8859-1`, whose first `charset=` is inside a quoted value. Here the parameters
// are read as RFC 9110 §5.6.6 writes them (media-syntax.ts): every charset must be UTF-8, and
// a list that does not parse is refused, as no two readers agree on it.

import type { MediaParameters } from './media-syntax.js';

/** No charset, or only UTF-8 ones (`utf-8`, `utf8`, any case, quoted or not), among parameters read by mediaParameters (which refuses a list that does not parse). */
export function onlyUtf8(parameters: MediaParameters): boolean {
  return parameters.every(([name, value]) => name.toLowerCase() !== 'charset' || /^utf-?8$/i.test(value));
}

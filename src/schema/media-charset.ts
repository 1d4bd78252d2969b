// Whether a JSON body's Content-Type says UTF-8 to every reader of its parameters. The check
// validates the bytes as UTF-8 (RFC 8259 §8.1); an app that decodes the body in the charset
// the header names (Spring does, Latin-1 included) reads another document: `é` (C3 A9) is
// `Ã©` to it, past a maxLength, a pattern or an enum. The first `charset=` found by a search
// was taken: `charset=utf-8; charset=iso-8859-1` passed, and a parser that keeps the last
// (Spring's, the npm content-type package's) reads Latin-1; so did `x="; charset=utf-8";
// charset=iso-8859-1`, whose first `charset=` is inside a quoted value. Here the parameters
// are read as RFC 9110 §5.6.6 writes them (token = token / quoted-string): every charset must
// be UTF-8, and a list that does not parse is refused, as no two readers agree on it.

/** One parameter (or a stray `;`): name, then the value as a token or a quoted string. */
const PARAMETER = /[ \t]*;[ \t]*(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z-]*))?[ \t]*/y;

/** No charset, or only UTF-8 ones (`utf-8`, `utf8`, any case, quoted or not), in a parameter list every parser reads alike. */
export function isUtf8Charset(contentType: string): boolean {
  const at = contentType.indexOf(';');
  if (at === -1) return true;
  PARAMETER.lastIndex = at;
  while (PARAMETER.lastIndex < contentType.length) {
    const start = PARAMETER.lastIndex;
    const m = PARAMETER.exec(contentType);
    if (m === null || PARAMETER.lastIndex === start) return false;
    const [, name, value] = m;
    if (name === undefined || name.toLowerCase() !== 'charset') continue;
    const unquoted = (value as string).startsWith('"') ? (value as string).slice(1, -1).replace(/\\(.)/g, '$1') : (value as string);
    if (!/^utf-?8$/i.test(unquoted)) return false;
  }
  return true;
}

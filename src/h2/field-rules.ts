// The rules RFC 9113 §8.2 puts on one field, shared by the incoming side (headers.ts) and the
// outgoing side (headers-outgoing.ts): what a name is (regular, pseudo, connection-specific,
// `te`, content-length, or invalid), checked once per distinct name and cached, and which
// characters a value may hold.

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** What a field name is, once checked (see nameKind). */
export const enum Kind {
  Invalid,
  Regular,
  Pseudo,
  ConnectionSpecific,
  Te,
  ContentLength,
}

/**
 * Names already checked (the same few dozen recur on every request): a bounded cache, so a
 * peer sending endless distinct names costs us a check each, not memory.
 */
const KINDS = new Map<string, Kind>();
const KINDS_MAX = 1024;

/** A name's kind if it was checked before exactly as it is (no lower-casing), else undefined. */
export const cachedKind = (name: string): Kind | undefined => KINDS.get(name);

export function nameKind(name: string): Kind {
  let kind = KINDS.get(name);
  if (kind !== undefined) return kind;
  kind = !validName(name) ? Kind.Invalid : name.charCodeAt(0) === 0x3a ? Kind.Pseudo : CONNECTION_SPECIFIC.has(name) ? Kind.ConnectionSpecific : name === 'te' ? Kind.Te : name === 'content-length' ? Kind.ContentLength : Kind.Regular;
  if (kind !== Kind.Invalid && KINDS.size < KINDS_MAX) KINDS.set(name, kind);
  return kind;
}

/**
 * The characters of a field name: RFC 9110 §5.1's token (tchar), less upper case (RFC 9113
 * §8.2.1). RFC 9113 itself only bars 0x00–0x20, upper case, 0x7f–0xff and colons, but a name
 * such as `x"a` or `x/a` fits no HTTP/1.1 message, nghttp2 refuses it, and Node's http2 client,
 * asked to send one, destroys its whole session (every other stream on it too).
 */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** A lower-case token, or a colon followed by one (a pseudo-header's name). */
function validName(name: string): boolean {
  const n = name.length;
  const start = name.charCodeAt(0) === 0x3a ? 1 : 0;
  if (n === start) return false;
  for (let i = start; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x80 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * RFC 9113 §8.2.1: no NUL, CR or LF, no leading or trailing space or tab; no other control
 * character but HTAB either (RFC 9110 §5.5's field-vchar, as nghttp2 checks: an HTTP/1.1 app
 * or a Node http2 peer would refuse the field, or drop it unseen); and nothing above U+00FF,
 * which HPACK's latin1 strings cannot carry (the encoder would throw mid-block, its table then
 * out of step with the peer's).
 */
export const BAD_VALUE = /[\0-\x08\n-\x1f\x7f\u0100-\uffff]|^[ \t]|[ \t]$/;

/** RFC 9113 §8.2.2: `te` may be sent, with no value but "trailers". */
export const TE_REFUSED = 'te other than "trailers" is not allowed in HTTP/2';

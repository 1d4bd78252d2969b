// Header blocks as users see them, and the rules RFC 9113 §8.2–8.3 puts on them. Incoming
// flat [name, value, ...] lists from HPACK become null-prototype objects (duplicates joined
// as Node does: set-cookie an array, cookie with "; ", single-valued fields first wins, others
// with ", "), after checking the
// field-name and field-value characters, the pseudo-headers (known, required, no duplicates,
// none after a regular field, none in trailers), connection-specific fields and `te`. A
// malformed block is a stream error (PROTOCOL_ERROR), reported as a reason string.
// Outgoing objects become flat lists with pseudo-headers first and names lower-cased.

export type IncomingHeaders = Record<string, string | string[] | undefined>;
export type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined | null>;

export const enum HeadKind {
  Request,
  Response,
  Trailers,
}

/**
 * A content-length: 1*DIGIT (RFC 9110 §8.6), leading zeros allowed as nghttp2 and llhttp allow
 * them (an HTTP/1.1 app's `Content-Length: 0000000000000005` is relayed as it came), at most
 * 15 significant digits so that the number is exact.
 */
const DIGITS = /^0*[0-9]{1,15}$/;
const STATUS = /^[1-5][0-9][0-9]$/;
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/**
 * Fields that carry one value: a repeat is dropped (the first wins), as node:http's
 * IncomingMessage and Node's http2 do. Joining two with ", " would forge a value neither side
 * sent (`authorization: a, b`), and the two codecs would hand the app different heads.
 */
export const SINGLE_VALUED: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** What a field name is, once checked (see nameKind). */
const enum Kind {
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

function nameKind(name: string): Kind {
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
const BAD_VALUE = /[\0-\x08\n-\x1f\x7f\u0100-\uffff]|^[ \t]|[ \t]$/;

export interface ParsedHead {
  headers: IncomingHeaders;
  /** The content-length announced, or -1. */
  contentLength: number;
}

/**
 * A decoded head's object: nothing inherited (a field named `__proto__`, `constructor` or
 * `toString` is a field like any other, as with Object.create(null)), but made by a
 * constructor whose prototype is such an empty object, so V8 gives it hidden classes (fast
 * properties) rather than the hash-table (dictionary) mode Object.create(null) objects start
 * in. Measured with the dictionary heads: under a saturating load the inbound's old generation
 * grew ~0.6 MB/s (a sampling profile put 65 % of what its scavenges kept on the heads) and
 * 0.2 MB/s with these; in the peer harness the inbound's peak RSS went 92 -> 79 MB and its CPU
 * 27.5 -> 23.4 µs per request. A head with many fields still goes to dictionary mode (V8 does
 * that itself past about a dozen added by key), as do the other objects fields are copied into.
 */
function HeadFields(): void {}
HeadFields.prototype = Object.create(null);
const newHead = (): IncomingHeaders => new (HeadFields as unknown as new () => IncomingHeaders)();

/** Checks and converts one decoded block; returns a reason string when it is malformed. */
export function parseHead(flat: readonly string[], kind: HeadKind): ParsedHead | string {
  const headers = newHead();
  let regularSeen = false;
  let contentLength = -1;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    const nk = nameKind(name);
    if (nk === Kind.Invalid) return `invalid header name ${JSON.stringify(name)}`;
    if (BAD_VALUE.test(value)) return `invalid value for header ${name}`;
    if (nk === Kind.Pseudo) {
      if (kind === HeadKind.Trailers) return `pseudo-header ${name} in trailers`;
      if (regularSeen) return `pseudo-header ${name} after a regular header`;
      const known = kind === HeadKind.Request ? name === ':method' || name === ':scheme' || name === ':path' || name === ':authority' : name === ':status';
      if (!known) return `unknown pseudo-header ${name}`;
      if (headers[name] !== undefined) return `duplicate pseudo-header ${name}`;
      headers[name] = value;
      continue;
    }
    regularSeen = true;
    if (nk === Kind.ConnectionSpecific) return `connection-specific header ${name}`;
    if (nk === Kind.Te && value !== 'trailers') return 'te other than "trailers"';
    if (nk === Kind.ContentLength) {
      if (!DIGITS.test(value)) return 'invalid content-length';
      const n = Number(value);
      if (contentLength !== -1 && contentLength !== n) return 'conflicting content-length values';
      contentLength = n;
    }
    const prev = headers[name];
    // two Hosts name two sites: malformed, as nghttp2 (Node's codec) and HTTP/1.1 (RFC 9112 §3.2) have it
    if (prev !== undefined && name === 'host') return 'duplicate host';
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else if (!SINGLE_VALUED.has(name)) headers[name] = prev + (name === 'cookie' ? '; ' : ', ') + value;
  }
  if (kind === HeadKind.Request) {
    const method = headers[':method'] as string | undefined;
    if (method === undefined) return 'missing :method';
    // a method is a token; a target holds no whitespace (nghttp2, Node's codec, refuses both)
    if (!METHOD_TOKEN.test(method)) return `invalid :method ${JSON.stringify(method)}`;
    const target = headers[':path'];
    // ASCII only: header values are read one byte per character, so \s would also refuse 0xA0 (UTF-8 bytes nghttp2 lets through)
    if (typeof target === 'string' && /[\x00-\x20\x7f]/.test(target)) return 'whitespace or a control character in :path';
    // (no extended CONNECT, RFC 8441: we never announce SETTINGS_ENABLE_CONNECT_PROTOCOL, so :protocol is unknown)
    if (method === 'CONNECT') {
      if (headers[':scheme'] !== undefined || headers[':path'] !== undefined) return 'CONNECT with :scheme or :path';
      if (headers[':authority'] === undefined) return 'CONNECT without :authority';
    } else {
      if (headers[':scheme'] === undefined) return 'missing :scheme';
      // RFC 3986 §3.1 (nghttp2 and Node's codec refuse any other :scheme)
      if (!SCHEME.test(headers[':scheme'] as string)) return `invalid :scheme ${JSON.stringify(headers[':scheme'])}`;
      const path = headers[':path'] as string | undefined;
      if (path === undefined || path === '') return 'missing or empty :path';
      // RFC 9113 §8.3.1: an http(s) target is a path, or `*` for OPTIONS only (nghttp2's rule too)
      const scheme = headers[':scheme'];
      if ((scheme === 'https' || scheme === 'http') && path.charCodeAt(0) !== 0x2f && (path !== '*' || method !== 'OPTIONS')) return `:path ${JSON.stringify(path)} for ${method}`;
    }
  } else if (kind === HeadKind.Response) {
    const status = headers[':status'] as string | undefined;
    if (status === undefined || !STATUS.test(status)) return 'missing or invalid :status';
    if (status === '101') return ':status 101 is not allowed in HTTP/2';
  }
  return { headers, contentLength };
}

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
const SCHEME = /^[A-Za-z][A-Za-z0-9+\-.]*$/;

/** RFC 9110 §9.1: a method is a token (tchar+). */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 9113 §8.2.2: `te` may be sent, with no value but "trailers". */
const TE_REFUSED = 'te other than "trailers" is not allowed in HTTP/2';

/** The pseudo-headers a request or response may carry (none other may be sent), one bit each; 0 for any other name. */
function pseudoBit(name: string): number {
  switch (name) {
    case ':status':
      return 1;
    case ':method':
      return 2;
    case ':scheme':
      return 4;
    case ':path':
      return 8;
    case ':authority':
      return 16;
    default:
      return 0;
  }
}

export class InvalidHeaderError extends TypeError {
  override readonly name = 'InvalidHeaderError';
  readonly code = 'ERR_H2_INVALID_HEADER';
}

/** The pseudo-header bits (pseudoBit) each kind of head may carry. */
const PSEUDO_ALLOWED = [2 | 4 | 8 | 16, 1, 0];

/**
 * What `kind` of head may carry: a request its four pseudo-headers, a response (final or 1xx)
 * :status and nothing else, trailers none (RFC 9113 §8.1, §8.3). The peer would reset the
 * stream for any of these; refused here, with a stable error, before anything is sent.
 */
function checkKind(pseudoSeen: number, kind: HeadKind | undefined): void {
  if (kind === undefined) return;
  const extra = pseudoSeen & ~PSEUDO_ALLOWED[kind]!;
  if (extra !== 0) throw new InvalidHeaderError(kind === HeadKind.Trailers ? 'pseudo-headers are not allowed in trailers' : `a pseudo-header not allowed in a ${kind === HeadKind.Request ? 'request' : 'response'}`);
  if (kind === HeadKind.Response && pseudoSeen === 0) throw new InvalidHeaderError('a response head without :status');
}

/** RFC 7541 §4.1's size of a header list: each field's name and value octets plus 32 (what SETTINGS_MAX_HEADER_LIST_SIZE counts). */
export function headerListSize(flat: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < flat.length; i += 2) size += flat[i]!.length + flat[i + 1]!.length + 32;
  return size;
}

/**
 * An outgoing header object as a flat list, pseudo-headers first; or a flat list, checked as it
 * is (names already lower-case, pseudo-headers already first) and returned without a copy.
 * With `kind`, also held to the pseudo-headers that kind of head may carry (checkKind).
 */
export function flattenHeaders(headers: OutgoingHeaders | readonly string[], kind?: HeadKind): string[] {
  if (Array.isArray(headers)) return checkedList(headers as string[], kind);
  const out: string[] = [];
  /** Where the next pseudo-header goes: they must precede every regular field. */
  let pseudoEnd = 0;
  let pseudoSeen = 0;
  for (const key in headers) {
    const value = (headers as OutgoingHeaders)[key];
    if (value === undefined || value === null) continue;
    let name = key;
    let nk = KINDS.get(key);
    if (nk === undefined) {
      name = key.toLowerCase();
      nk = nameKind(name);
    }
    if (nk === Kind.Invalid) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(key)}`);
    if (nk === Kind.ConnectionSpecific) throw new InvalidHeaderError(`connection-specific header ${name} is not allowed in HTTP/2`);
    if (nk === Kind.Pseudo) {
      const bit = pseudoBit(name);
      if (bit === 0) throw new InvalidHeaderError(`unknown pseudo-header ${name}`);
      pseudoSeen |= bit;
    }
    if (Array.isArray(value)) {
      if (nk === Kind.Pseudo || nk === Kind.Te) throw new InvalidHeaderError(`${name} takes one value`);
      for (const v of value) {
        const s = String(v);
        if (BAD_VALUE.test(s)) throw new InvalidHeaderError(`invalid value for header ${name}`);
        out.push(name, s);
      }
      continue;
    }
    const s = typeof value === 'string' ? value : String(value);
    if (BAD_VALUE.test(s)) throw new InvalidHeaderError(`invalid value for header ${name}`);
    if (nk === Kind.Te && s !== 'trailers') throw new InvalidHeaderError(TE_REFUSED);
    if (nk === Kind.Pseudo && pseudoEnd !== out.length) out.splice(pseudoEnd, 0, name, s);
    else out.push(name, s);
    if (nk === Kind.Pseudo) pseudoEnd += 2;
  }
  checkKind(pseudoSeen, kind);
  return out;
}

/** A caller's flat list, held to the rules flattenHeaders applies to an object's fields. */
function checkedList(list: string[], kind: HeadKind | undefined): string[] {
  if ((list.length & 1) !== 0) throw new InvalidHeaderError('a header list needs a value for every name');
  let regularSeen = false;
  /** The pseudo-headers seen so far, one bit each: a list, unlike an object, can repeat a name. */
  let pseudoSeen = 0;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const nk = typeof name === 'string' ? nameKind(name) : Kind.Invalid;
    // nameKind also refuses upper case: a list is sent as it is, not lower-cased for the caller
    if (nk === Kind.Invalid) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(name)}`);
    if (nk === Kind.ConnectionSpecific) throw new InvalidHeaderError(`connection-specific header ${name} is not allowed in HTTP/2`);
    if (nk === Kind.Pseudo) {
      if (regularSeen) throw new InvalidHeaderError(`pseudo-header ${name} after a regular header`);
      const bit = pseudoBit(name);
      if (bit === 0) throw new InvalidHeaderError(`unknown pseudo-header ${name}`);
      if ((pseudoSeen & bit) !== 0) throw new InvalidHeaderError(`duplicate pseudo-header ${name}`);
      pseudoSeen |= bit;
    } else regularSeen = true;
    if (typeof value !== 'string' || BAD_VALUE.test(value)) throw new InvalidHeaderError(`invalid value for header ${name}`);
    if (nk === Kind.Te && value !== 'trailers') throw new InvalidHeaderError(TE_REFUSED);
  }
  checkKind(pseudoSeen, kind);
  return list;
}

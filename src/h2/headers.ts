// Incoming heads as users see them, and the rules RFC 9113 §8.2–8.3 puts on them. Flat
// [name, value, ...] lists from HPACK become null-prototype objects (duplicates joined as Node
// does: set-cookie an array, cookie with "; ", single-valued fields first wins, others with
// ", "), after checking the field-name and field-value characters (field-rules.ts), the
// pseudo-headers (known, required, no duplicates, none after a regular field, none in
// trailers), connection-specific fields and `te`. A malformed block is a stream error
// (PROTOCOL_ERROR), reported as a reason string. Outgoing heads: headers-outgoing.ts.

import { BAD_VALUE, Kind, nameKind } from './field-rules.js';

export type IncomingHeaders = Record<string, string | string[] | undefined>;
export type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined | null>;

export const enum HeadKind {
  Request,
  Response,
  Trailers,
}

/** The most significant digits of a content-length read: a number exact in JavaScript, under 1 PB. */
export const CONTENT_LENGTH_MAX_DIGITS = 15;

/**
 * A content-length: 1*DIGIT (RFC 9110 §8.6), leading zeros allowed as nghttp2 and llhttp allow
 * them (an HTTP/1.1 app's `Content-Length: 0000000000000005` is relayed as it came), at most
 * CONTENT_LENGTH_MAX_DIGITS significant digits so that the number is exact.
 */
const DIGITS = new RegExp(`^0*[0-9]{1,${CONTENT_LENGTH_MAX_DIGITS}}$`);
const STATUS = /^[1-5][0-9][0-9]$/;
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

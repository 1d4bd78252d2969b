// Response fields a proxy must not pass on as they came, beyond the hop-by-hop rules
// (hop-by-hop.ts): trailer fields RFC 9110 §6.5.1 forbids or that are not valid fields at all,
// and a Content-Length on an answer that cannot have a body. Passed on, each breaks the next
// hop: an HTTP/1.1 parser refuses a framing field in trailers and cuts the whole response, an
// HTTP/2 peer resets a stream whose 204 announces content, and a Host trailer would route.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { owsTrimmed } from './raw-headers.js';

/**
 * RFC 9110 §6.5.1: message framing, routing, request modifiers (controls, conditionals),
 * authentication, response control data and the fields that say how to process the content
 * may not be trailers. Go's net/http keeps the same list (httpguts badTrailer) plus `If-*`;
 * the hop-by-hop fields are here too, a trailer has no connection to describe.
 */
const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  // framing and connection
  'connection',
  'content-length',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // routing and request modifiers
  'expect',
  'host',
  'max-forwards',
  'pragma',
  'range',
  // authentication and state
  'authorization',
  'cookie',
  'proxy-authenticate',
  'proxy-authorization',
  'realm',
  'set-cookie',
  'www-authenticate',
  // response control data
  'age',
  'cache-control',
  'date',
  'expires',
  'location',
  'retry-after',
  'vary',
  'warning',
  // how to process the content
  'content-encoding',
  'content-range',
  'content-type',
]);

/** RFC 9110 §5.1 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/i;
/** RFC 9110 §5.5: visible characters, SP, HTAB and obs-text, nothing else (no CR, LF, NUL or other CTL). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The trailer fields fit to forward, names lower-case: forbidden ones, pseudo-headers, names
 * that are not tokens and values with control characters are dropped one by one, the others
 * (grpc-status, grpc-message, checksums) kept. Never throws.
 */
export function forwardableTrailers(trailers: IncomingHttpHeaders | OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const key in trailers) {
    const value = trailers[key];
    if (value === undefined || value === null) continue;
    const name = key.toLowerCase();
    if (FORBIDDEN_TRAILERS.has(name) || name.startsWith('if-') || !TOKEN.test(name)) continue;
    if (Array.isArray(value)) {
      const kept: string[] = [];
      for (const v of value) {
        const text = validValue(String(v));
        if (text !== undefined) kept.push(text);
      }
      if (kept.length > 0) out[name] = kept;
    } else {
      const text = validValue(String(value));
      if (text !== undefined) out[name] = text;
    }
  }
  return out;
}

function validValue(value: string): string | undefined {
  // leading and trailing whitespace is not part of a value (RFC 9110 §5.5), and HTTP/2 refuses
  // it; cut by scans (owsTrimmed): /^[ \t]+|[ \t]+$/g took time square in a run of inner spaces
  return FIELD_VALUE.test(value) ? owsTrimmed(value) : undefined;
}

/**
 * RFC 9110 §8.6: a 1xx or 204 answer carries no Content-Length (an HTTP/2 peer resets the
 * stream over a non-zero one). A 304 keeps its own: the length a 200 would have had.
 */
export function bodylessStatus(status: number): boolean {
  return status < 200 || status === 204;
}

/** Whether a head says `Content-Length: 0` (an object, or a flat [name, value, ...] list with lower-case names). */
export function saysNoContent(headers: OutgoingHttpHeaders | string[]): boolean {
  if (!Array.isArray(headers)) return headers['content-length'] === '0' || headers['content-length'] === 0;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-length') return headers[i + 1] === '0';
  return false;
}

/** Removes Content-Length from a head: an object, or a flat [name, value, ...] list with lower-case names. */
export function dropContentLength(headers: OutgoingHttpHeaders | string[]): void {
  if (!Array.isArray(headers)) {
    delete headers['content-length'];
    return;
  }
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === 'content-length') headers.splice(i, 2);
}

/**
 * RFC 9110 §15.3.6: a 205 has no content, yet an HTTP/1.1 reader frames it by its length (it is
 * not among the statuses RFC 9112 §6.3 ends at the head), and an HTTP/2 peer resets a stream
 * that ends at a head announcing more: whatever the app announced (Express's sendStatus(205)
 * sends 13 bytes of text), it goes on as Content-Length: 0, its content dropped.
 */
export function zeroContentLength(headers: OutgoingHttpHeaders | string[]): void {
  dropContentLength(headers);
  if (Array.isArray(headers)) headers.push('content-length', '0');
  else headers['content-length'] = '0';
}

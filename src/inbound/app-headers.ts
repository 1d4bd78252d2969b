// The request head the app is sent, from the caller's: hop-by-hop fields and pseudo-headers
// removed (src/http/hop-by-hop.ts), and whatever the caller claimed as x-forwarded-client-cert
// or x-request-id replaced by what this sidecar knows (the verified caller, the request id).
// As an object for the forwarders that take one (node:http, h2c), built once per exchange;
// or straight as the flat list undici writes, with no object in between (the common path).

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { forwardableHeaderList, forwardableHeaders } from '../http/hop-by-hop.js';
import { forwardableTrailers } from '../http/response-fields.js';
import type { Exchange } from './exchange.js';

/**
 * Not passed on to an HTTP/1.1 app (the flat list): set by the sidecar below; the framing the
 * client writes itself; and `te`, which is hop-by-hop and on HTTP/1.1 must come with a
 * `Connection: TE` option (RFC 9110 §10.1.4) that undici refuses to send: a caller's
 * `te: trailers` (HTTP/2 requires it of gRPC) means nothing to an HTTP/1.1 app, whose trailers
 * the sidecar relays anyway. An h2c app still gets it (appHeadersOf).
 */
const REPLACED = new Set(['x-forwarded-client-cert', 'x-request-id', 'content-length', 'transfer-encoding', 'te']);
const OURS = new Set(['x-forwarded-client-cert', 'x-request-id']);
/**
 * The fields whose other spellings are dropped: ours, those that frame the body or steer the
 * connection, and those the OpenAPI check judges the body by (names without a `-` have no such
 * spelling).
 */
const SHADOWED = new Set([...OURS, 'content-length', 'transfer-encoding', 'keep-alive', 'proxy-connection', 'content-type', 'content-encoding']);
/** Characters a field name may hold (RFC 9110 tchar) that some server maps to `_`, as it maps `-`. */
const SEPARATOR_LIKE = /[^a-z0-9-]/g;

/**
 * A caller's field that is one of ours, or a framing or connection field, spelt with another
 * character for `-` (`x_forwarded_client_cert`, `x.forwarded-client-cert`, `transfer_encoding`):
 * CGI-style servers read such spellings as the same variable (WSGI and PHP map `-` to `_`, PHP
 * `.` too, and Caddy's FastCGI passes `.` on) and join them or keep the last, so an app taking
 * the first or last `URI=` would believe the caller's claim, and one reading
 * `Transfer_Encoding: chunked` beside our `content-length` would frame the body otherwise than
 * we did. Such fields are dropped (Envoy's headers_with_underscores_action does it for all
 * names with `_`; nginx ignores names with characters other than letters, digits, `-` and `_`).
 */
function shadowsGuardedField(name: string): boolean {
  return !plainName(name) && SHADOWED.has(name.replace(SEPARATOR_LIKE, '-'));
}

/** Lower-case letters, digits and `-` alone (names are lower case here): the common name, one scan, no copy. */
function plainName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45)) return false;
  }
  return true;
}

/** REPLACED plus the caller's other spellings of our fields, if it sent any (rare: no set made otherwise). */
function notForwarded(headers: Exchange['requestHeaders']): ReadonlySet<string> {
  let extra: Set<string> | undefined;
  for (const name in headers) if (shadowsGuardedField(name)) (extra ??= new Set(REPLACED)).add(name);
  return extra ?? REPLACED;
}

/** The app's request head as an object (the forwarder may add to it: pseudo-headers, Host). */
export function appHeadersOf(exchange: Exchange): OutgoingHttpHeaders {
  if (exchange.appHeaders !== undefined) return exchange.appHeaders;
  const headers = forwardableHeaders(exchange.requestHeaders);
  for (const name in headers) if (shadowsGuardedField(name)) delete headers[name];
  // whatever the caller claimed, the app learns who called from us
  headers['x-forwarded-client-cert'] = exchange.caller.xfcc;
  headers['x-request-id'] = exchange.requestId;
  exchange.appHeaders = headers;
  return headers;
}

/**
 * The same head as a flat [name, value, ...] list without the framing fields (content-length,
 * transfer-encoding): the client writes those from the body it sends.
 */
export function appHeaderListOf(exchange: Exchange): Array<string | string[]> {
  const list = forwardableHeaderList(exchange.requestHeaders, notForwarded(exchange.requestHeaders));
  list.push('x-forwarded-client-cert', exchange.caller.xfcc, 'x-request-id', exchange.requestId);
  return list;
}

/**
 * The caller's request trailers as the app is sent them (an h2c app; HTTP/1.1 apps get none):
 * valid trailer fields only, and never one of ours or another spelling of it. An app that merges
 * trailers into its headers (gRPC metadata, Go's r.Trailer) must not read a caller's
 * x-forwarded-client-cert there as the identity this sidecar verified.
 */
export function appTrailersOf(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = forwardableTrailers(trailers);
  for (const name in out) if (OURS.has(name) || shadowsGuardedField(name)) delete out[name];
  return out;
}

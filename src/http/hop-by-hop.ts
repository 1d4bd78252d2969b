// Headers that describe one connection, not the message (RFC 9110 §7.6.1): a proxy removes
// them, and any header the Connection header names, before forwarding in either direction.
// HTTP/2 forbids them outright, so forwarding one there would reset the stream.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Headers the Connection header may never remove: the message's framing and its target. A
 * caller that names `content-length` in Connection would otherwise strip the length of a body
 * we still forward, and the app would read that body as a second request (smuggling).
 */
const NEVER_CONNECTION_SCOPED = new Set(['content-length', 'transfer-encoding', 'host']);

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name);
}

/**
 * A copy of the headers fit to forward: hop-by-hop and pseudo-headers (":path" ...) removed,
 * names lower-case. `te: trailers` survives because gRPC over HTTP/2 requires it.
 */
export function forwardableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const connection = headers.connection;
  const named = connection ? connectionScoped(connection) : undefined;
  for (const name in headers) {
    const verdict = verdictOf(name, headers, named);
    if (verdict === KEEP) out[name] = withoutTrailingSpace(headers[name]);
    else if (verdict === TE_TRAILERS) out.te = 'trailers';
  }
  return out;
}

/**
 * The same headers as a flat [name, value, ...] list, less the names in `replaced` (which the
 * caller adds itself): for a client that takes a list (undici), with no object in between.
 */
export function forwardableHeaderList(headers: IncomingHttpHeaders, replaced: ReadonlySet<string>): Array<string | string[]> {
  const list: Array<string | string[]> = [];
  appendForwardable(list, headers, replaced, false);
  return list;
}

/**
 * The same fields appended to `list` one value per entry (an array value, e.g. set-cookie,
 * becomes one field each): for an HTTP/2 encoder that takes the flat list as it is.
 */
export function appendForwardableFields(list: string[], headers: IncomingHttpHeaders, replaced: ReadonlySet<string>): void {
  appendForwardable(list, headers, replaced, true);
}

function appendForwardable(list: Array<string | string[]>, headers: IncomingHttpHeaders, replaced: ReadonlySet<string>, expand: boolean): void {
  const connection = headers.connection;
  const named = connection ? connectionScoped(connection) : undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || replaced.has(name)) continue;
    const verdict = verdictOf(name, headers, named);
    if (verdict === KEEP) {
      if (expand && typeof value !== 'string') for (const v of value) list.push(name, v);
      else list.push(name, withoutTrailingSpace(value));
    } else if (verdict === TE_TRAILERS) list.push('te', 'trailers');
  }
}

/**
 * A value as it can go on: Node joins repeated fields with ", ", so a repeat with an empty value
 * (`X-E: v` then `X-E:`) reads "v, ", and no HTTP/2 field value may end in whitespace (RFC 9113
 * §8.2.1): the meshcar codec refused the request (400) and Node's dropped the field at the peer.
 * A value as one line carried it is already trimmed by both parsers; one array entry is one line.
 */
function withoutTrailingSpace<T extends string | string[] | undefined>(value: T): T {
  if (typeof value !== 'string') return value;
  const last = value.charCodeAt(value.length - 1);
  return (last === 32 || last === 9 ? value.trimEnd() : value) as T;
}

const KEEP = 0;
const DROP = 1;
const TE_TRAILERS = 2;

/** Whether a header goes on: pseudo-headers and hop-by-hop ones do not, but `te: trailers` does. */
function verdictOf(name: string, headers: IncomingHttpHeaders, named: Set<string> | undefined): number {
  if (name.charCodeAt(0) === 58 /* ':' */) return DROP;
  if (!HOP_BY_HOP.has(name) && named?.has(name) !== true) return KEEP;
  return name === 'te' && /(^|,)\s*trailers\s*(,|$)/i.test(String(headers.te)) ? TE_TRAILERS : DROP;
}

/**
 * Removes from an HTTP/1.1 request's headers, in place, the fields its Connection header names
 * (less those it may never remove), before anything reads them: they never reach the far side,
 * so nothing here may judge the request by them either. The OpenAPI check passed a required
 * `Idempotency-Key` the app was then not sent, and a bodiless POST named one to be sent twice
 * (a review). `keep-alive` and `close` name nothing: the common head is not copied or touched.
 */
export function dropConnectionOptions<T extends IncomingHttpHeaders>(headers: T): T {
  const connection = headers.connection;
  const named = connection ? connectionScoped(connection) : undefined;
  if (named !== undefined) for (const name of named) if (!HOP_BY_HOP.has(name) && Object.hasOwn(headers, name)) delete headers[name];
  return headers;
}

/**
 * The header names a Connection header makes hop-by-hop, less those it may never remove.
 * undefined: none beyond the hop-by-hop set. `keep-alive` and `close` (what nearly every
 * HTTP/1.1 app answers with) name nothing else, and were 1.4 % of the inbound's busy CPU
 * when split and lower-cased on every response.
 */
export function connectionScoped(connection: string | string[]): Set<string> | undefined {
  if (connection === 'keep-alive' || connection === 'close' || connection === 'Keep-Alive' || connection === 'Close') return undefined;
  const named = new Set<string>();
  for (const value of Array.isArray(connection) ? connection : [connection]) {
    for (const token of value.toLowerCase().split(',')) {
      const name = token.trim();
      if (name !== '' && !NEVER_CONNECTION_SCOPED.has(name)) named.add(name);
    }
  }
  return named;
}

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
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name) || named?.has(name)) {
      if (name === 'te' && /(^|,)\s*trailers\s*(,|$)/i.test(String(headers.te))) out.te = 'trailers';
      continue;
    }
    out[name] = headers[name];
  }
  return out;
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

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
  const named = connection ? new Set(String(connection).toLowerCase().split(',').map((s) => s.trim())) : undefined;
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

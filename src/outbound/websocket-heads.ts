// The heads of an app's WebSocket (Upgrade) request and of its upstream's answer as the other
// side reads them (websocket.ts): which fields go on (none that describe one connection or the
// framing on it), Host as the upstream the app named, and a refusal's head as the app reads it
// (a 101's: src/http/switching-fields.ts).

import type { IncomingMessage } from 'node:http';
import { connectionScoped } from '../http/hop-by-hop.js';

/** Connection-scoped headers that are not part of the upgrade handshake itself. */
const DROPPED = new Set(['host', 'x-request-id', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'http2-settings']);
/** Fields of a non-101 answer that describe the upstream connection or the body's framing on it. */
export const ANSWER_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);

/**
 * The request head as the upstream will read it, as a raw list: Host is the upstream the app
 * named. The fields the app's Connection names are connection-scoped (RFC 9110 §7.6.1) and left
 * out, as on every other request; Connection itself goes on as `Upgrade` alone (as the inbound
 * writes it toward its app), since the switch is all it has to say to the next hop.
 */
export function requestFields(req: IncomingMessage, authority: string, requestId: string): string[] {
  const fields = ['Host', authority, 'Connection', 'Upgrade'];
  const connection = req.headers.connection;
  const named = connection === undefined ? undefined : connectionScoped(connection);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (DROPPED.has(lower) || lower === 'connection' || (named?.has(lower) === true && lower !== 'upgrade')) continue;
    fields.push(name, raw[i + 1] as string);
  }
  fields.push('x-request-id', requestId);
  // an Upgrade has no body (one announced is refused before this), but node:http's client frames
  // a POST, PUT or PATCH without a Content-Length as chunked and ends it with an empty chunk,
  // which the peer's inbound refuses as a body: such a method says Content-Length: 0 (once: an
  // app's own `Content-Length: 0`, as Go's client sends, goes on as it is)
  if (!UNFRAMED_BY_DEFAULT.has(req.method ?? 'GET') && req.headers['content-length'] === undefined) fields.push('Content-Length', '0');
  return fields;
}

/** Methods node:http's client sends with no framing when no Content-Length is set; others it frames as chunked. */
const UNFRAMED_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * A refusal's head (not a 101: switching-fields.ts) as the app reads it, from node:http's parse,
 * less `except` (lower-case) and the fields its Connection names, which are the upstream
 * connection's (RFC 9110 §7.6.1), ending with `connection: close`. node:http reads a head as
 * latin1, one character a byte: written back as latin1, a value's bytes above 0x7f (obs-text)
 * go on as they came, where UTF-8 made two of each.
 */
export function responseHead(res: IncomingMessage, except: ReadonlySet<string>): string {
  let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
  const connection = res.headers.connection;
  const named = connection === undefined ? undefined : connectionScoped(connection);
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (!except.has(lower) && named?.has(lower) !== true) head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  return `${head}connection: close\r\n\r\n`;
}

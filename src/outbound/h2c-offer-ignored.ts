// An HTTP/1.1 request offering `Upgrade: h2c` alone is served as the plain request it also is.
// Java's HttpClient makes that offer on every http:// URI by default and curl does with
// --http2; a 400 broke such an app behind the sidecar, where its calls worked straight. RFC
// 9113 deprecates the upgrade and RFC 9110 §7.8 lets a server ignore an Upgrade, as Envoy and
// nginx do; the client reads our HTTP/1.1 answer and goes on in HTTP/1.1. No tunnel is made, so
// nothing passes the per-request policy (an offer of h2c beside another protocol is still
// refused: websocket.ts).
//
// Node's server hands every Upgrade request to its 'upgrade' listener with the connection
// taken off its parser, the bytes read past the head (a body, pipelined requests) in `head`.
// So the head is written again without the upgrade's fields (Upgrade, HTTP2-Settings and their
// Connection options) and the connection goes back to the server, those bytes after it: the
// request is parsed, limited, timed and answered as any other, and nothing read is lost.

import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { handToHttp1 } from '../http/protocol-dispatch.js';

/** Field names the h2c offer adds (lower case): dropped, and dropped from Connection. */
const OFFER_FIELDS = new Set(['upgrade', 'http2-settings']);

/** Gives `socket` back to `server` with the request `req` (an h2c offer) written again without the offer, then `head`. */
export function serveWithoutH2cOffer(server: Server, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const bytes = Buffer.from(headWithoutOffer(req), 'latin1');
  handToHttp1(server, socket, head.length === 0 ? bytes : Buffer.concat([bytes, head]));
}

/** The request head as received (names as written, values as parsed: latin1, as Node decodes them), less the h2c offer. */
export function headWithoutOffer(req: IncomingMessage): string {
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (OFFER_FIELDS.has(lower)) continue;
    if (lower === 'connection') {
      const kept = value.split(',').map((option) => option.trim()).filter((option) => option !== '' && !OFFER_FIELDS.has(option.toLowerCase()));
      if (kept.length > 0) head += `${name}: ${kept.join(', ')}\r\n`;
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

// The two pieces of HTTP/1.1 text the own app client (app-connection.ts) reads or writes itself:
// the request head it sends, framing included (llhttp reads the answers), and the app's
// `Keep-Alive: timeout=N` hint, which says how long an idle connection may be kept.

import type { AppRequest } from './app-dispatch.js';

// What callers send was checked by their parsers (Node's HTTP/1.1, the HTTP/2 codecs) already;
// these checks keep the head one request whatever a future path hands in (undici made them too).
/** A value that would end its line early. */
const LINE_BREAKING = /[\r\n\0]/;
/** A method or field name: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A request target: no controls, spaces or DEL (the line would read as something else). */
const TARGET_BREAKING = /[\x00-\x20\x7f]/;
/** Methods whose bodiless request still says `Content-Length: 0` (as Node and undici send them). */
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** The request head, or undefined if its method, target or a field could not be written as one request. */
export function requestHead(request: AppRequest): string | undefined {
  if (!TOKEN.test(request.method) || TARGET_BREAKING.test(request.path)) return undefined;
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  const fields = request.headers;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string | readonly string[];
    if (!TOKEN.test(name)) return undefined;
    if (typeof value === 'string') {
      if (LINE_BREAKING.test(value)) return undefined;
      head += `${name}: ${value}\r\n`;
    } else {
      for (const one of value) {
        if (LINE_BREAKING.test(one)) return undefined;
        head += `${name}: ${one}\r\n`;
      }
    }
  }
  if (request.body !== undefined) head += request.contentLength === undefined ? 'transfer-encoding: chunked\r\n' : `content-length: ${request.contentLength}\r\n`;
  else if (EXPECTS_BODY.has(request.method)) head += 'content-length: 0\r\n';
  return `${head}\r\n`;
}

/** `Keep-Alive: timeout=N` from the app, in ms; undefined when absent or unreadable. */
export function keepAliveHint(raw: readonly string[]): number | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const match = /(?:^|[\s,])timeout\s*=\s*(\d+)/i.exec(raw[i + 1] as string);
    if (match) return Number(match[1]) * 1000;
  }
  return undefined;
}

// How a request body is framed, in one place for both directions. A proxy that lets the framing
// it sends differ from the body it sends is a request-smuggling proxy: the far side reads the
// rest of the body as a second request that nobody authorized. So toward an HTTP/1.1 server
// the framing header is always set from what we will actually send, never copied blindly.

import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

const DECIMAL = /^\d+$/;

/** `chunked` alone (in any case, whitespace around it): the only transfer coding passed on either way. */
function chunkedAlone(coding: string): boolean {
  return coding === 'chunked' || coding.trim().toLowerCase() === 'chunked';
}

/** Methods that define no meaning for a request body: bodiless, they carry no framing at all. */
const NO_CONTENT_MEANING: ReadonlySet<string> = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * Does an HTTP/1.1 request head announce a body? (RFC 9112 §6.3: Transfer-Encoding, else a
 * non-zero Content-Length; Node's parser has already refused the two together and any
 * malformed or conflicting length.)
 */
export function announcesBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  // as a number: `Content-Length: 00` is no body either (it was judged one, and an optional
  // JSON body refused as invalid JSON)
  return length !== undefined && Number(length) !== 0;
}

/**
 * RFC 9112 §6.1: an HTTP/1.0 request with Transfer-Encoding has faulty framing, Content-Length
 * or not. Node's parser reads it as chunked and keeps the connection; it is answered as read,
 * then the connection closes (Node's `Connection: close`, and pipelined-turns.ts forwards
 * nothing queued behind it): what follows on the connection may be the rest of a body that an
 * HTTP/1.0 hop in front framed otherwise, a second request nobody meant. Call it as the request
 * arrives, before anything is written.
 */
export function closeAfterHttp10Coding(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1 && req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
}

/**
 * Why an HTTP/1.1 request's Transfer-Encoding cannot be passed on, or undefined: only
 * `chunked` alone is. Node's parser takes `gzip, chunked` (chunked last) and undoes the
 * chunking only, so the body would go on still gzip-coded with the coding dropped (the field
 * is hop-by-hop): the far app would read other bytes than the caller sent. RFC 9112 §6.1: 501.
 */
export function transferCodingProblem(headers: IncomingHttpHeaders): string | undefined {
  const coding = headers['transfer-encoding'];
  if (coding === undefined || chunkedAlone(coding)) return undefined;
  return `Transfer-Encoding ${JSON.stringify(coding.slice(0, 100))} is not supported: only chunked (send the body without other transfer codings, or as Content-Encoding)`;
}

/**
 * Why an app's response Transfer-Encoding (all its fields joined) cannot be relayed, or
 * undefined: none, or `chunked` alone. The field is hop-by-hop and the client undoes only the
 * chunking (`gzip, chunked`), or reads to the close (`gzip`): relayed, the caller would get
 * the coded bytes with the coding dropped, a silently corrupt body. The sidecar answers 502.
 */
export function responseCodingProblem(coding: string | undefined): string | undefined {
  if (coding === undefined || chunkedAlone(coding)) return undefined;
  return `the app's response has Transfer-Encoding ${JSON.stringify(coding.slice(0, 100))}: only chunked can be relayed`;
}

/**
 * Sets the framing of a request toward an HTTP/1.1 server so that it matches what will be
 * written, whatever the method: Node's client would otherwise write a GET, HEAD, DELETE,
 * OPTIONS or TRACE body raw after a bodiless head.
 * - no body: `Content-Length: 0` for methods that give a body meaning (RFC 9110 §8.6: POST,
 *   PUT, PATCH...; Node would send an empty chunked body instead), no framing for the others;
 * - a body whose length the caller declared (and the caller's framing enforced): that length;
 * - any other body (chunked, or HTTP/2 DATA without content-length): chunked.
 */
export function frameRequestBody(headers: OutgoingHttpHeaders, method: string, hasBody: boolean, callerHeaders: IncomingHttpHeaders): void {
  headers['content-length'] = undefined;
  headers['transfer-encoding'] = undefined;
  if (!hasBody) {
    if (!NO_CONTENT_MEANING.has(method)) headers['content-length'] = '0';
    return;
  }
  const length = callerHeaders['content-length'];
  if (callerHeaders['transfer-encoding'] === undefined && typeof length === 'string' && DECIMAL.test(length)) headers['content-length'] = length;
  else headers['transfer-encoding'] = 'chunked';
}

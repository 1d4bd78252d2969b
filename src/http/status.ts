// Every error answer meshcar writes, from one error: the JSON body and its headers for an
// HTTP caller, and for a gRPC caller a trailers-only answer (HTTP 200, grpc-status,
// grpc-message), as linkerd2-proxy and Envoy answer it, because gRPC clients read a non-200
// status only as "the transport failed" (a 504 becomes UNAVAILABLE, not DEADLINE_EXCEEDED)
// and drop the JSON body unread. The single mapping from error codes to HTTP and gRPC
// statuses is error-statuses.ts (re-exported here, so importers have one place to ask).

import { STATUS_CODES, ServerResponse } from 'node:http';
import { constants as h2, type Http2ServerResponse } from 'node:http2';
import type { H2ServerStream } from './h2-server-stream.js';
import { MeshcarError } from '../errors.js';
import { grpcStatusFor, statusFor } from './error-statuses.js';
import { escapeUnsafe } from '../log-escape.js';

export { CLIENT_CLOSED_STATUS, effectiveStatus, grpcHealthStatus, grpcStatusFor, isErrorCode, statusFor } from './error-statuses.js';

/**
 * The content type of a trailers-only gRPC error answer when the request is gRPC
 * (`application/grpc`, `application/grpc+proto`, gRPC-Web ...), else undefined.
 */
export function grpcAnswerType(requestContentType: unknown): string | undefined {
  if (typeof requestContentType !== 'string') return undefined;
  // media types are case-insensitive; gRPC clients send lower case, so that is the fast path
  const type = requestContentType.startsWith('application/grpc') ? requestContentType : requestContentType.toLowerCase();
  if (!type.startsWith('application/grpc')) return undefined;
  const next = type.charCodeAt(16);
  // 'application/grpc' exactly, or followed by '+' / ';' / '-web...'; not 'application/grpcfoo'
  if (Number.isNaN(next) || next === 0x2b || next === 0x3b) return 'application/grpc';
  if (type.startsWith('application/grpc-web-text')) return 'application/grpc-web-text';
  return type.startsWith('application/grpc-web') ? 'application/grpc-web' : undefined;
}

/** grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2: "Percent-Encoded"). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Any thrown value as a MeshcarError; unexpected ones become 'internal' with no detail leaked. */
export function asMeshcarError(err: unknown): MeshcarError {
  if (err instanceof MeshcarError) return err;
  return new MeshcarError('internal', 'internal error', { cause: err });
}

export interface ErrorBodyExtras {
  readonly requestId?: string;
  /** The request was gRPC: answer trailers-only with this content type (see grpcAnswerType). */
  readonly grpcType?: string | undefined;
}

/**
 * The JSON body of every error meshcar answers: `{"error","message","requestId"}`. Escaped as a
 * log line is (log-escape.ts), as sendJson's answers are: a message quotes what a caller sent (a
 * path, a query, a config value) and is read with curl on a terminal. Every error answer is made
 * here (sendError, sendStreamError, rawErrorResponse, the codec's 431), so each server escapes.
 */
export function errorBody(err: Pick<MeshcarError, 'code' | 'message'>, requestId?: string): string {
  return escapeUnsafe(JSON.stringify(requestId === undefined ? { error: err.code, message: err.message } : { error: err.code, message: err.message, requestId }));
}

/**
 * The body bytes of the answer sendError / sendStreamError give this request, for the record's
 * bytesOut (the access log says what reached the caller): none to a gRPC caller (trailers-only)
 * or to a HEAD, else the JSON body.
 */
export function errorBodyBytes(err: Pick<MeshcarError, 'code' | 'message'>, requestId: string | undefined, grpcType: string | undefined, method: string): number {
  return grpcType !== undefined || method === 'HEAD' ? 0 : Buffer.byteLength(errorBody(err, requestId));
}

function errorHeaders(err: MeshcarError, body: string, requestId: string | undefined): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-meshcar-error': err.code,
  };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  if (err.allow !== undefined) headers.allow = err.allow;
  return headers;
}

/**
 * The JSON error answer as a flat field list (names lower-case, no :status) and its body, made
 * once, for a writer that sends it without a request at hand: our HTTP/2 codec's 431 to a
 * request whose head it did not keep (h2 connection option headersTooLargeAnswer).
 */
export function errorAnswerList(err: MeshcarError): { fields: string[]; body: Buffer } {
  const body = errorBody(err);
  const fields: string[] = [];
  for (const [name, value] of Object.entries(errorHeaders(err, body, undefined))) fields.push(name, String(value));
  return { fields, body: Buffer.from(body) };
}

/** A trailers-only gRPC answer: the status and message ride in the one header block, no body. */
function grpcErrorHeaders(err: MeshcarError, grpcType: string, requestId: string | undefined): Record<string, string | number> {
  const headers: Record<string, string | number> = { 'content-type': grpcType, ...grpcErrorTrailers(err) };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  return headers;
}

/**
 * The trailers that end a gRPC answer the sidecar cut after its head (the upstream broke off
 * or went quiet): the status the error stands for (UNAVAILABLE, DEADLINE_EXCEEDED), its
 * message and x-meshcar-error, where a gRPC client reads them, rather than a bare reset.
 */
export function grpcErrorTrailers(err: MeshcarError): Record<string, string | number> {
  return { 'grpc-status': grpcStatusFor(err.code), 'grpc-message': grpcMessage(err.message), 'x-meshcar-error': err.code };
}

/** Writes the JSON error answer; once the response has started, cutting it is the only signal left. */
export function sendError(res: ServerResponse | Http2ServerResponse, err: MeshcarError, extras: ErrorBodyExtras = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (extras.grpcType !== undefined) {
    const headers = grpcErrorHeaders(err, extras.grpcType, extras.requestId);
    headers['content-length'] = 0;
    (res as ServerResponse).writeHead(200, headers);
    res.end();
    return;
  }
  const body = errorBody(err, extras.requestId);
  // a reason phrase a refused writeHead left behind (node:http stores it before checking it) is
  // not ours to send: our status's own is (Http2ServerResponse has none, and warns on setting one)
  if (res instanceof ServerResponse) res.statusMessage = '';
  (res as ServerResponse).writeHead(statusFor(err.code), errorHeaders(err, body, extras.requestId));
  res.end(body);
}

const END_STREAM = { endStream: true } as const;

/**
 * The same answer on an HTTP/2 stream (core API); a reset once the response has started.
 * A stream that can take no answer any more (the caller reset it or went away, on either
 * codec) is expected and left alone. Anything else that throws is a fault of ours (a header the
 * answer cannot carry): the error answer is the last thing a request's handling does, so it
 * never throws out of it (that would end the process); the stream is reset (INTERNAL_ERROR)
 * and the error returned for the caller to log. Undefined otherwise.
 */
export function sendStreamError(stream: H2ServerStream, err: MeshcarError, requestId?: string, grpcType?: string): unknown {
  // meshcar's codec marks a received reset at once (localClosed), before 'close' sets closed
  if (stream.destroyed || stream.closed || stream.localClosed === true) return undefined;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return undefined;
  }
  try {
    if (grpcType !== undefined) {
      stream.respond({ ':status': 200, ...grpcErrorHeaders(err, grpcType, requestId) }, END_STREAM);
      return undefined;
    }
    const body = errorBody(err, requestId);
    stream.respond({ ':status': statusFor(err.code), ...errorHeaders(err, body, requestId) });
    // the answer to a HEAD: both codecs' respond() ended the stream with the head, and a body
    // written now would be an 'error' (write after end) on a stream nobody may be listening to
    if (!stream.writableEnded) stream.end(body);
    return undefined;
  } catch (fault) {
    if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return fault;
  }
}

/**
 * A whole HTTP/1.1 error response as text, for a raw socket (an Upgrade request, or a request
 * the parser refused) that no ServerResponse wraps; it closes the connection.
 */
export function rawErrorResponse(err: MeshcarError | { status: number }, requestId?: string): string {
  const status = 'status' in err ? err.status : statusFor(err.code);
  const body = 'status' in err ? '' : errorBody(err, requestId);
  const headers = 'status' in err ? { 'content-length': 0, 'cache-control': 'no-store' } : errorHeaders(err, body, requestId);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}connection: close\r\n\r\n${body}`;
}

/**
 * A JSON answer of the admin port or the CA. Escaped as a log line is (log-escape.ts): an
 * operator reads these with curl on a terminal, and some quote what a peer chose (GET
 * /debug/tls: a certificate's subject, C1 controls and bidi overrides included).
 */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = escapeUnsafe(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

// The sidecar's own answers where src/http's sendError cannot write them: on an HTTP/2
// stream (core API, not the compatibility response) and on a raw socket whose HTTP/1.1
// request could not even be parsed. Same JSON body and x-meshcar-error header as sendError.

import type { OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { ErrorCode } from '../errors.js';
import { statusFor } from '../http/status.js';

/** The body sendError writes: `{"error","message","requestId"}`. */
export function errorBody(code: ErrorCode, message: string, requestId: string | undefined): string {
  return JSON.stringify(requestId === undefined ? { error: code, message } : { error: code, message, requestId });
}

export function sendStreamError(stream: ServerHttp2Stream, code: ErrorCode, message: string, requestId: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const body = errorBody(code, message, requestId);
  const headers: OutgoingHttpHeaders = {
    ':status': statusFor(code),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-meshcar-error': code,
    'x-request-id': requestId,
  };
  stream.respond(headers);
  stream.end(body);
}

/** A complete HTTP/1.1 response that closes the connection, for a request Node could not parse. */
export function rawErrorResponse(status: number, reason: string, code: ErrorCode | undefined, message: string): string {
  const body = code === undefined ? '' : errorBody(code, message, undefined);
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    (code === undefined ? '' : `content-type: application/json\r\nx-meshcar-error: ${code}\r\n`) +
    `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`
  );
}

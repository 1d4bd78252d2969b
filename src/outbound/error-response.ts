// Answers the app when meshcar itself decides the outcome (no route, upstream down, timeout):
// the shared JSON error body plus `x-meshcar-error: <code>`, on whichever transport the app
// used: an HTTP/1.1 response, an h2c stream, or the raw socket of an Upgrade request.
// Statuses come from src/http/status.ts, the one place that maps codes to HTTP.

import { STATUS_CODES, type ServerResponse } from 'node:http';
import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { MeshcarError } from '../errors.js';
import { sendError, statusFor } from '../http/status.js';

/** The same body sendError writes: {"error","message","requestId"}. */
function errorBody(err: MeshcarError, requestId: string): string {
  return JSON.stringify({ error: err.code, message: err.message, requestId });
}

/** HTTP/1.1: before the head is out, a JSON answer; after it, the only honest signal is a cut. */
export function answerHttp1(res: ServerResponse, err: MeshcarError, requestId: string): void {
  if (!res.headersSent && !res.destroyed) res.setHeader('x-meshcar-error', err.code);
  sendError(res, err, { requestId });
}

/** h2c: a JSON answer, or a stream reset once the response has started. */
export function answerH2(stream: ServerHttp2Stream, err: MeshcarError, requestId: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = errorBody(err, requestId);
  stream.respond({
    ':status': statusFor(err.code),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-meshcar-error': err.code,
  });
  stream.end(body);
}

/** An Upgrade request owns its socket: write a whole HTTP/1.1 response by hand, then close. */
export function answerRawSocket(socket: Duplex, err: MeshcarError, requestId: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = statusFor(err.code);
  const body = errorBody(err, requestId);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'cache-control: no-store\r\n' +
      `x-meshcar-error: ${err.code}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

// A request Node's HTTP/1.1 parser refused ('clientError'): the JSON refusal every meshcar
// listener answers it with (Node's own is a bare 400, 408 or 431), and Node's guard on when an
// answer may still be written. Each listener decides what else to do (a connection busy with an
// earlier request, logging).

import { METHODS } from 'node:http';
import type { Socket } from 'node:net';
import { MeshcarError } from '../errors.js';
import { errorBody, rawErrorResponse, statusFor } from './status.js';
import { lingeringClose } from './lingering-close.js';
import type { Direction, RefusedRequest } from '../metrics/traffic.js';

export interface RefusalTexts {
  /** Whose head limit was passed. */
  readonly headTooLarge: string;
  /**
   * For a listener that forwards requests (the sidecar's): where a method Node's HTTP/1.1 parser
   * does not know can go instead; the refusal then lists the methods the parser takes. Without
   * it (the CA, the admin port), the refusal says only that this port does not serve the method.
   */
  readonly otherMethods?: string;
  /** What did not arrive in time (a listener with a requestTimeout bounds bodies too). */
  readonly timedOut?: string;
}

/** The refusal for a parser error. */
export function parserRefusal(err: NodeJS.ErrnoException, texts: RefusalTexts): MeshcarError {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new MeshcarError('headers_too_large', texts.headTooLarge);
  if (err.code === 'HPE_INVALID_METHOD') {
    // a request line with a method Node's parser has no name for (RFC 9110 §9.1 allows any
    // token; llhttp takes a fixed list): 501, as §15.6.2 has it, not a malformed request
    const method = unknownMethodOf(err);
    if (method !== undefined && texts.otherMethods !== undefined) return new MeshcarError('unsupported_method', `the method ${method} is not one of the ${METHODS.length} Node's HTTP/1.1 parser takes (case-sensitive: ${METHODS.join(', ')}); ${texts.otherMethods}`);
    if (method !== undefined) return new MeshcarError('unsupported_method', `the method ${method} is not one this port serves`);
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new MeshcarError('request_timeout', texts.timedOut ?? 'the request head did not arrive in time');
  return new MeshcarError('bad_request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
}

// an RFC 9110 token, then a space and the start of a request target (origin, asterisk or
// absolute form): a request line, not bytes of another protocol
const REQUEST_LINE_START = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}) (?:\/|\*|[A-Za-z][A-Za-z0-9+.-]*:\/\/)/;

/**
 * The method of a request line Node's parser refused for its method (HPE_INVALID_METHOD), or
 * undefined if what failed does not look like a request line. The error says where in the
 * chunk read the parser stopped (within the method); the line starts after the newline before.
 */
function unknownMethodOf(err: NodeJS.ErrnoException): string | undefined {
  const { rawPacket, bytesParsed } = err as NodeJS.ErrnoException & { rawPacket?: unknown; bytesParsed?: unknown };
  if (!Buffer.isBuffer(rawPacket) || typeof bytesParsed !== 'number') return undefined;
  let start = Math.min(bytesParsed, rawPacket.length);
  while (start > 0 && rawPacket[start - 1] !== 0x0a && bytesParsed - start <= 32) start--;
  const method = REQUEST_LINE_START.exec(rawPacket.subarray(start, start + 64).toString('latin1'))?.[1];
  // a known method here is the tail of a longer one whose start came in an earlier read (`PUT`
  // then `S /`, or `GET` then `GET /`): the name as read would be wrong, so none is given
  return method === undefined || KNOWN_METHODS.has(method) ? undefined : method;
}

const KNOWN_METHODS = new Set(METHODS);

/** What was read of a refused request's head, for its record. */
export interface RefusedHead {
  readonly method: string;
  readonly requestId: string;
  /** The answer's body bytes when not the JSON body (an HTTP/2 answer to HEAD, or gRPC's trailers-only: 0). */
  readonly bodyBytes?: number;
}

/**
 * The access log's record of a refusal answered with rawErrorResponse (or sendStreamError): with
 * no request id when the parser refused the head (none was read), with the method and id of a
 * head that was read.
 */
export function refusedRequest(direction: Direction, peer: string, refusal: MeshcarError, head?: RefusedHead): RefusedRequest {
  const record = { direction, peer, status: statusFor(refusal.code), errorCode: refusal.code, bytesOut: head?.bodyBytes ?? Buffer.byteLength(errorBody(refusal, head?.requestId)) };
  return head === undefined ? record : { ...record, method: head.method, requestId: head.requestId };
}

/**
 * Whether an answer may be written on the connection: Node's own guard (it is still open, the
 * client did not reset it, and nothing of a response is on it yet).
 */
export function mayAnswer(err: NodeJS.ErrnoException, socket: Socket): boolean {
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  return err.code !== 'ECONNRESET' && socket.writable && !inProgress?.headersSent;
}

/** A response still unfinished on the connection (an earlier request's, or this one's body). */
export function responseInProgress(socket: Socket): boolean {
  const inProgress = (socket as Socket & { _httpMessage?: { writableEnded?: boolean } | null })._httpMessage;
  return inProgress !== null && inProgress !== undefined && inProgress.writableEnded !== true;
}

/**
 * The request Node's parser is reading was answered already: its head came, its answer went
 * (no response is on the connection), and its body is still coming, which Node reads and drops
 * after the answer. Node's requestTimeout fires on such a body too: a 408 then would be a
 * second answer to one request.
 */
export function answeredWhileBodyComing(socket: Socket): boolean {
  const incoming = (socket as Socket & { parser?: { incoming?: { complete?: boolean } | null } | null }).parser?.incoming;
  const inProgress = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  return incoming !== null && incoming !== undefined && incoming.complete === false && (inProgress === null || inProgress === undefined);
}

/**
 * For a server that answers nothing else on a refused connection (the CA, the admin port): the
 * JSON refusal, written and the connection closed (lingering: the client may still be sending
 * the head or body the refusal is about, and must get to read it; lingering-close.ts); or, when no answer may be written (the
 * peer reset it, a response is already under way, a parse error is pipelined behind an
 * unanswered request, where a refusal would read as that request's answer, or the body that
 * timed out is that of a request already answered), the connection destroyed and undefined.
 */
export function refuseAndClose(err: NodeJS.ErrnoException, socket: Socket, texts: RefusalTexts): MeshcarError | undefined {
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (!mayAnswer(err, socket) || (timedOut ? answeredWhileBodyComing(socket) : responseInProgress(socket))) {
    socket.destroy();
    return undefined;
  }
  const refusal = parserRefusal(err, texts);
  socket.end(rawErrorResponse(refusal));
  lingeringClose(socket);
  return refusal;
}

/**
 * CONNECT on a server that tunnels nothing (the CA, the admin port): a JSON 405 naming the
 * methods it takes, and the connection closed. Node's server hands CONNECT to 'connect'
 * listeners only, and with none it drops the connection without a word.
 */
export function refuseConnectMethod(server: { on(event: 'connect', listener: (req: unknown, socket: Socket) => void): unknown }, allow: string, refused?: (refusal: MeshcarError) => void): void {
  server.on('connect', (_req, socket) => {
    const refusal = new MeshcarError('method_not_allowed', `CONNECT is not served here; use ${allow}`, { allow });
    if (socket.writable) socket.end(rawErrorResponse(refusal));
    lingeringClose(socket);
    refused?.(refusal);
  });
}

// What each HTTP/1.1 connection of the app-facing port holds (listener.ts): answers in
// progress, the request whose body is being read, whether it was upgraded or carries h2c, and
// whether it closes once idle; and the HTTP/1.1 requests refused before any forwarder sees
// them (unparseable, CONNECT), answered as every error of ours is: a status, x-meshcar-error
// and a JSON body, not Node's bare status line. What comes pipelined behind a request still
// unanswered is never answered before it: an Upgrade or CONNECT there closes the connection,
// an unparseable request closes it once the earlier answers are out, any other waits for the
// answer before it (src/http/pipelined-turns.ts), and a connection with more than
// MAX_PIPELINED answers in progress (an app pipelining without reading them) is closed.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { MeshcarError } from '../errors.js';
import { mayAnswer, parserRefusal } from '../http/client-error.js';
import { refuseInTurn, turnOver, turnsWaiting } from '../http/pipelined-turns.js';
import { requestIdOf } from '../http/request-id.js';
import { rawErrorResponse } from '../http/status.js';
import { lingeringClose } from '../http/lingering-close.js';
import { LogPerKey, leftOut } from '../log-per-key.js';
import type { AppHandlers } from './listener.js';

// HTTP/1.1 responses in progress on a connection (0: idle between requests, safe to close)
export const kBusy = Symbol('meshcar.busy');
export const kUpgraded = Symbol('meshcar.upgraded');
export const kHttp2 = Symbol('meshcar.http2');
export const kCloseWhenIdle = Symbol('meshcar.closeWhenIdle');
// the connection's latest request: the one whose body the parser reads until it is complete
const kReading = Symbol('meshcar.reading');
export type TrackedSocket = Socket & { [kBusy]?: number; [kUpgraded]?: boolean; [kHttp2]?: boolean; [kCloseWhenIdle]?: boolean; [kReading]?: IncomingMessage };

// a shared function (not a closure per request), called with the response as `this`
function onResponseClose(this: ServerResponse): void {
  const socket = this.req.socket as TrackedSocket;
  const busy = (socket[kBusy] ?? 1) - 1;
  socket[kBusy] = busy;
  // answered: a keep-alive socket no longer holds the request (its body, its attempt) until the
  // next one; an upload still going is let go when it ends (its broken body is still told to it)
  if (socket[kReading] === this.req) {
    if (this.req.complete) socket[kReading] = undefined;
    else this.req.on('end', onReadingEnd);
  }
  // draining (a response that began before drain may have promised keep-alive), or a later
  // pipelined request was unparseable; destroySoon: an app that keeps its side open holds nothing
  if (busy === 0 && socket[kCloseWhenIdle] && !socket[kUpgraded]) socket.destroySoon();
  // the next pipelined request's turn (inTurn below is told this listener calls it)
  turnOver(this);
}

/** The body of a request answered before its end has ended: its socket lets it go (unless a later one is read). */
function onReadingEnd(this: IncomingMessage): void {
  const socket = this.socket as TrackedSocket | null;
  if (socket && socket[kReading] === this) socket[kReading] = undefined;
}

/** Answers in progress on one app connection (pipelined, unread) beyond which it is closed. */
export const MAX_PIPELINED = 32;
const pipelineCuts = new LogPerKey();

/**
 * One more answer in progress on the request's connection, until its response closes; false
 * (the request not to be answered) when the connection is gone or has MAX_PIPELINED already.
 * Node hands over every request of a pipelined write at once: an app writing 20,000 and
 * reading nothing had them all forwarded or refused, their answers held (+57 MB RSS).
 */
export function trackResponse(req: IncomingMessage, res: ServerResponse, logger: Logger): boolean {
  const socket = req.socket as TrackedSocket;
  // the rest of a pipelined write Node parses after a cut: not answered
  if (socket.destroyed) {
    stopParsing(socket);
    return false;
  }
  if ((socket[kBusy] ?? 0) >= MAX_PIPELINED) {
    const through = pipelineCuts.take(socket.remoteAddress ?? 'unknown');
    if (through) logger.warn({ remote: socket.remoteAddress, remotePort: socket.remotePort }, `outbound connection closed: more than ${MAX_PIPELINED} requests pipelined without reading the answers${leftOut(through, 'closed')}`);
    socket.destroy();
    stopParsing(socket);
    return false;
  }
  socket[kBusy] = (socket[kBusy] ?? 0) + 1;
  socket[kReading] = req;
  res.on('close', onResponseClose);
  return true;
}

/** What Node's HTTP/1.1 server reads a connection with (internal): `onIncoming` is called with each request's head. */
type ParsedSocket = Socket & { parser?: { onIncoming?: () => number } | null };

/**
 * Node's parser reads the whole of a read (64 KiB: ~2,000 bare GETs) before it looks at the
 * socket again, and makes a request and a response for each, closed connection or not: 200 app
 * connections writing one such burst each and reading nothing took the outbound to 550 MB and
 * stalled it for seconds (the review's repro; a heap cap of 600 MB ended the process). A head's
 * handler that answers 2 (llhttp's "upgrade: stop here") ends that read's parsing at once; the
 * connection is gone, so its other bytes are nobody's.
 */
function stopParsing(socket: Socket): void {
  const parser = (socket as ParsedSocket).parser;
  if (parser) parser.onIncoming = PARSE_NO_FURTHER;
}

const PARSE_NO_FURTHER = (): number => 2;

/**
 * An Upgrade or CONNECT pipelined behind a request still unanswered: nothing more is read, and
 * the connection closes once the requests before it are answered, their answers first (it was
 * destroyed at once, and a request the upstream had carried out lost its answer).
 */
export function closeAfterAnswers(socket: Socket): void {
  (socket as TrackedSocket)[kCloseWhenIdle] = true;
}

/**
 * Whether the answer being written on `socket` is its last (closeAfterAnswers, or an unparseable
 * request behind it): none waits its turn behind it (a Connection: close would make Node drop it).
 */
export function closesAfterAnswers(socket: Socket): boolean {
  return (socket as TrackedSocket)[kCloseWhenIdle] === true && !turnsWaiting(socket);
}

export function busy(socket: Socket): boolean {
  return ((socket as TrackedSocket)[kBusy] ?? 0) > 0;
}

export function ignore(): void {}

/** Said with a method Node's HTTP/1.1 parser does not know: the same port takes HTTP/2, which carries any. */
const OTHER_METHODS = 'send it over HTTP/2 with prior knowledge (h2c) to this port, which takes any method';

/** A request Node's parser refused (or that outgrew the head limit, or never finished its head): answer and close. */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket, maxHeaderBytes: number, handlers: AppHandlers): void {
  const headTooLarge = `the request head is over the outbound listener's limit of ${maxHeaderBytes} bytes`;
  const reading = (socket as TrackedSocket)[kReading];
  if (err.code === 'HPE_INVALID_EOF_STATE' && reading !== undefined && !reading.complete) {
    // the app closed its connection before the body was whole: it left, as one that resets it
    // does (ECONNRESET, below), and nothing it could read is owed. Closed the same way, so the
    // request is recorded as left (499) and its upstream stream cancelled, not as a malformed
    // body (400 bad_request, an error the app never saw)
    socket.destroy();
    return;
  }
  if (err.code !== 'ECONNRESET' && reading !== undefined && !reading.complete) {
    // not a request behind: the body of the one in flight broke (a bad chunk size, a bare LF,
    // a trailer Node refuses). Node tells that request nothing, so it would wait for its
    // upstream's timeout and be counted against the endpoint: its forwarder is told instead,
    // and nothing more is read from the connection
    (socket as TrackedSocket)[kCloseWhenIdle] = true;
    const refusal = parserRefusal(err, { headTooLarge, otherMethods: OTHER_METHODS });
    // not started yet, waiting behind an answer still going out: refused in its turn, after it
    if (refuseInTurn(reading, refusal, () => handlers.refused(refusal))) return;
    if (!handlers.brokenBody(reading, refusal)) socket.destroy();
    return;
  }
  if (err.code !== 'ECONNRESET' && socket.writable && busy(socket)) {
    // a refusal written now would be read as the answer to an earlier request still in flight
    // (which was forwarded): those answers go out, then the connection closes, nothing more read
    (socket as TrackedSocket)[kCloseWhenIdle] = true;
    return;
  }
  if (!mayAnswer(err, socket)) {
    socket.destroy();
    return;
  }
  const refusal = parserRefusal(err, { headTooLarge, otherMethods: OTHER_METHODS });
  // the app may still be sending the head (or the body) the refusal is about: it gets to read it
  socket.end(rawErrorResponse(refusal));
  lingeringClose(socket);
  handlers.refused(refusal);
}

// Without a 'connect' listener Node closes the connection without a word. The outbound is no
// tunnel: it forwards requests (h2c's CONNECT gets the same answer, from its forwarder).
export function onConnect(req: IncomingMessage, socket: Socket, handlers: AppHandlers): void {
  if (busy(socket)) {
    closeAfterAnswers(socket); // our 400 would come before the earlier answer (as for an Upgrade)
    return;
  }
  // a CONNECT head was read: its x-request-id (or one made for it), as every answer to a request
  // carries, and a line in the access log, as h2c's CONNECT gets from its forwarder
  const refusal = new MeshcarError('bad_request', 'CONNECT is not supported on the outbound listener: send the request itself, with Host: <upstream>');
  const requestId = requestIdOf(req.headers);
  socket.end(rawErrorResponse(refusal, requestId));
  socket.destroySoon();
  handlers.refused(refusal, { method: 'CONNECT', requestId });
}

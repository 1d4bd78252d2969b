// HTTP/1.1 requests pipelined on one connection (the outbound's app listener, the inbound's
// callers) are handled one at a time, each once the answer before it on the connection is
// out. Node's server hands a pipelined request over as soon as it has parsed it and writes the
// answers in order, but an answer that ends the connection (an Expect: 100-continue answered
// without a 100, a 417, a refusal with `Connection: close`, a body that broke, drain) makes
// Node drop the answers queued behind it: a request forwarded meanwhile had reached the far app
// and been acted on, with no answer to whoever sent it (a POST pipelined behind an eager
// Expect body even arrived first). Requests waiting behind an answer that ends the connection
// are never forwarded. A request alone on its connection starts at once, as before. A waiting
// request whose body broke (Node's parser refused it) is answered its 400 in its turn, after
// the answers before it, and never forwarded (refuseInTurn).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { MeshcarError } from '../errors.js';
import { requestIdOf } from './request-id.js';
import { sendError } from './status.js';

type Start = (req: IncomingMessage, res: ServerResponse) => void;

// the response being answered on the connection, and what waits behind it (only when pipelined)
const kCurrent = Symbol('meshcar.turnCurrent');
const kWaiting = Symbol('meshcar.turnWaiting');
type Turns = Socket & { [kCurrent]?: ServerResponse | undefined; [kWaiting]?: Array<[IncomingMessage, ServerResponse, Start]> };

/** Whether requests wait their turn on `socket` behind the one being answered. */
export function turnsWaiting(socket: Socket): boolean {
  return ((socket as Turns)[kWaiting]?.length ?? 0) > 0;
}

/**
 * Runs `start` now if nothing else on the request's connection is being answered, else in its
 * turn; false, with nothing started or queued, when `limit` requests (the one answered and those
 * waiting) are already there: the caller closes the connection (Node parses every request of a
 * pipelined write at once, and each waiting one holds its request and response objects).
 * `listen` false: the caller's own 'close' listener on every response calls turnOver (one
 * listener per response instead of two: a second makes each emit copy a listener array).
 */
export function inTurn(req: IncomingMessage, res: ServerResponse, start: Start, limit = Infinity, listen = true): boolean {
  const socket = req.socket as Turns;
  if (socket[kCurrent] === undefined) {
    if (listen) res.on('close', onTurnOver); // a shared function: no closure per request
    socket[kCurrent] = res;
    start(req, res);
    return true;
  }
  const waiting = (socket[kWaiting] ??= []);
  if (waiting.length + 1 >= limit) return false;
  if (listen) res.on('close', onTurnOver);
  waiting.push([req, res, start]);
  return true;
}

function onTurnOver(this: ServerResponse): void {
  turnOver(this);
}

/**
 * A response is over: the next request waiting on its connection starts, unless this answer
 * ended the connection (Node writes nothing more on it), in which case none ever does.
 */
export function turnOver(res: ServerResponse): void {
  const socket = res.req.socket as Turns | null;
  if (socket === null || socket[kCurrent] !== res) return;
  socket[kCurrent] = undefined;
  const waiting = socket[kWaiting];
  if (waiting === undefined || waiting.length === 0) return;
  if (!res.shouldKeepAlive || socket.destroyed || !socket.writable) {
    waiting.length = 0;
    return;
  }
  const [req, next, start] = waiting.shift() as [IncomingMessage, ServerResponse, Start];
  socket[kCurrent] = next;
  start(req, next);
}

/**
 * A request still waiting its turn whose body broke meanwhile (a bad chunk size in the same
 * write as the request being answered): in its turn, once the answers before it are out, it is
 * answered `refusal` and the connection closes; it is never started. Closing at once lost the
 * earlier answer, and starting it in its turn forwarded a broken body (a review). False when
 * it is not waiting (started already, or alone on its connection). `recorded` runs as it is
 * answered (the access log's record).
 */
export function refuseInTurn(req: IncomingMessage, refusal: MeshcarError, recorded: () => void): boolean {
  const waiting = (req.socket as Turns | null)?.[kWaiting];
  const entry = waiting?.find((w) => w[0] === req);
  if (entry === undefined) return false;
  entry[2] = (_req, res) => {
    res.shouldKeepAlive = false;
    sendError(res, refusal, { requestId: requestIdOf(req.headers) });
    recorded();
  };
  return true;
}

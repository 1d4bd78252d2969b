// POST /reload's body, which nobody reads, still ends before the reload runs. A reload run
// while the body was coming had no one to tell when that body then broke (a bad chunk): the
// parser's error closed the connection under the unanswered request, and the config was
// reloaded all the same with the client told nothing. Now a broken body runs nothing, and
// is answered with the JSON 400 (or the 408 of a body too slow) through the request's own
// response, which nothing had written yet.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mayAnswer, parserRefusal, type RefusalTexts } from '../http/client-error.js';
import { sendError } from '../http/status.js';

/** Resolves true once the request's body (if any) has ended, false when it broke off first. */
export function bodyEnded(req: IncomingMessage): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  return new Promise((resolve) => {
    req.once('end', () => resolve(true));
    req.once('close', () => resolve(req.complete));
    req.resume(); // read and dropped
  });
}

/** Each request's own response, for the one whose body breaks behind others (answerBrokenBody). */
const responses = new WeakMap<IncomingMessage, ServerResponse>();
/** Each connection's latest response: the last of those Node sends in turn. */
const latest = new WeakMap<Socket, ServerResponse>();
/** Connections whose parser error is dealt with: Node's errored parser reports it again at each later read. */
const dealtWith = new WeakSet<Socket>();

/** Responses the parser's 400 went through: their handler, still running, writes nothing more. */
const refusedByParser = new WeakSet<ServerResponse>();

/**
 * Whether the parser's 400 answered this response (answerBrokenBody): a handler that then
 * answers or fails must leave it alone. Its error answer found the head sent and destroyed the
 * response, and a queued one took the connection with it before the 400 went out; its JSON
 * answer threw, logged as an internal error with a stack, once per connection.
 */
export function answeredByParser(res: ServerResponse): boolean {
  return refusedByParser.has(res);
}

/** Called as each request arrives: its response is found again if its body breaks. */
export function trackResponse(req: IncomingMessage, res: ServerResponse): void {
  responses.set(req, res);
  latest.set(req.socket, res);
}

/**
 * A parser error ('clientError') in the body of a request whose answer nothing has begun:
 * answered through that request's own response, the connection closed after it. Pipelined
 * behind requests still being answered, that response waits its turn (Node holds what is
 * written to it until those before it are done): the 400 went out through the one on the
 * socket instead, an earlier request's (a reload that ran was told 400, and its own answer
 * then threw), and then, that one closing the connection, a reload queued between ran with
 * its answer lost. With no response of its own to carry it (a broken head, a handler that
 * answered already), the answers in progress go out and the connection closes after the last.
 * False when nothing is in progress (the caller answers as for any parser error).
 */
export function answerBrokenBody(err: NodeJS.ErrnoException, socket: Socket, texts: RefusalTexts): boolean {
  if (dealtWith.has(socket)) return true;
  if (!mayAnswer(err, socket)) return false;
  const reading = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  const own = reading && !reading.complete ? responses.get(reading) : undefined;
  if (own !== undefined && !own.headersSent && !own.writableEnded) {
    dealtWith.add(socket);
    refusedByParser.add(own);
    own.setHeader('connection', 'close');
    sendError(own, parserRefusal(err, texts));
    return true;
  }
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current === null || current === undefined || current.writableFinished) return false;
  const last = latest.get(socket) ?? current;
  dealtWith.add(socket);
  if (!last.headersSent) last.setHeader('connection', 'close');
  if (last.writableFinished) socket.destroySoon();
  else last.once('finish', () => socket.destroySoon());
  return true;
}

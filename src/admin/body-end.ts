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

/**
 * A parser error ('clientError') in the body of a request whose answer nothing has begun:
 * answered through that request's response, the connection closed after it ('answered').
 * Pipelined behind a request still being answered ('behind'), the response on the socket is
 * that earlier request's: its answer goes out whole, then the connection closes, and the
 * broken request runs nothing (bodyEnded). The 400 went out through it instead: a reload that
 * ran was told 400, and its own answer then threw. False when there is no response on the
 * socket (the caller answers as for any parser error).
 */
export function answerBrokenBody(err: NodeJS.ErrnoException, socket: Socket, texts: RefusalTexts): 'answered' | 'behind' | false {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (res === null || res === undefined || res.writableEnded || !mayAnswer(err, socket)) return false;
  const reading = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  if (reading !== undefined && reading !== null && reading !== res.req) {
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.once('finish', () => socket.destroySoon());
    return 'behind';
  }
  res.setHeader('connection', 'close');
  sendError(res, parserRefusal(err, texts));
  return 'answered';
}

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
 * answered through that request's response, the connection closed after it. False when there
 * is no such response (the caller answers as for any parser error).
 */
export function answerBrokenBody(err: NodeJS.ErrnoException, socket: Socket, texts: RefusalTexts): boolean {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (res === null || res === undefined || res.writableEnded || !mayAnswer(err, socket)) return false;
  res.setHeader('connection', 'close');
  sendError(res, parserRefusal(err, texts));
  return true;
}

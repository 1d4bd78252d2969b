// An AbortSignal for work done on behalf of a request that nobody may hear the end of: it
// aborts when the response's connection closes before the response was sent whole (the client
// left, or the server cut it). Work that spends something once (a single-use join token) asks
// it before spending (ca/token-ledger.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';

/** Aborted once `res` closes unsent; at once if `req`'s connection is already gone (its 'close' may have come and gone). */
export function unansweredSignal(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  if (req.socket.destroyed && !res.writableFinished) gone.abort();
  else {
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
  }
  return gone.signal;
}

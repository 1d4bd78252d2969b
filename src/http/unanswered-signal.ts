// An AbortSignal for work done on behalf of a request that nobody may hear the end of: it
// aborts when the response's connection closes before the response was sent whole (the client
// left, or the server cut it). Work that spends something once (a single-use join token) asks
// it before spending (ca/token-ledger.ts).

import type { ServerResponse } from 'node:http';

/** Aborted once `res` closes unsent. */
export function unansweredSignal(res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}

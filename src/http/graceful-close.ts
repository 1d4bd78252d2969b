// Closing an HTTP/1.1 server whose requests may still be waiting for their answer (the admin's
// POST /reload when SIGTERM stops the sidecar: its reload ends, aborted or applied, while the
// sidecar drains; the CA's sign requests when SIGTERM stops `ca serve`). Cutting every connection at once (closeAllConnections) lost that answer: the
// client got a socket hang-up where a JSON outcome was due. Now: no new connections, idle ones
// closed at once, each answer still to come written with `Connection: close` (its connection
// ends with it), and whatever is still open after the grace cut.

import type { Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/** Tracks `server`'s responses in progress; the function returned closes it as above. */
export function gracefulCloser(server: Server | HttpsServer): (graceMs: number) => Promise<void> {
  const answering = new Set<ServerResponse>();
  let closing = false;
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    answering.add(res);
    res.once('close', () => answering.delete(res));
  });
  return (graceMs) =>
    new Promise<void>((resolve) => {
      closing = true;
      for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
      const cut = setTimeout(() => server.closeAllConnections(), graceMs);
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
}

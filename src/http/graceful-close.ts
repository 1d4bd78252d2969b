// Closing an HTTP/1.1 server whose requests may still be waiting for their answer (the admin's
// POST /reload when SIGTERM stops the sidecar: its reload ends, aborted or applied, while the
// sidecar drains; the CA's sign requests when SIGTERM stops `ca serve`). Cutting every
// connection at once (closeAllConnections) lost that answer: the client got a socket hang-up
// where a JSON outcome was due. Now: no new connections, each answer still to come written
// with `Connection: close` (its connection ends with it), every connection with no request in
// flight closed at once, and whatever is still open after the grace cut.

import type { Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tcpUnder } from './tunnel-reset.js';

/** What gracefulCloser returns: the close, and how many responses it tracks (tests, diagnostics). */
export type GracefulClose = ((graceMs: number) => Promise<void>) & { readonly tracked: () => number };

/** Tracks `server`'s connections and responses in progress; the function returned closes it as above. */
export function gracefulCloser(server: Server | HttpsServer): GracefulClose {
  /**
   * The responses still to be sent, by the connection their requests came on. Forgotten with
   * their connection too: Node never emits 'close' on a pipelined response still queued when its
   * connection closes (a 400 that closes it, the pipelining cut). Kept until their own 'close',
   * they piled up: 14,872 responses and 1.4 GB of heap in 40 s from one client of the admin port
   * or the CA (a review).
   */
  const answering = new Map<Socket, Set<ServerResponse>>();
  /** Every accepted TCP connection (for HTTPS, from before its TLS handshake). */
  const connections = new Set<Socket>();
  let closing = false;
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.prependListener('request', (req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    const connection = req.socket;
    if (connection.closed) return; // gone already: its response is never sent, nothing to wait for
    let responses = answering.get(connection);
    if (responses === undefined) {
      responses = new Set();
      answering.set(connection, responses);
      connection.once('close', () => answering.delete(connection));
    }
    const own = responses;
    own.add(res);
    res.once('close', () => own.delete(res));
  });
  const close = (graceMs: number) =>
    new Promise<void>((resolve) => {
      closing = true;
      for (const responses of answering.values()) for (const res of responses) if (!res.headersSent) res.shouldKeepAlive = false;
      const cut = setTimeout(() => server.closeAllConnections(), graceMs);
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      // Node's closeIdleConnections leaves a connection whose first request has not begun (a
      // TLS handshake under way, or done with nothing sent) or whose head is half sent: the
      // close waited the whole grace for it, and anyone who reached the port added 10 s to
      // every `ca serve` stop
      const busy = new Set<Socket>();
      for (const [connection, responses] of answering) if (responses.size > 0) busy.add(tcpUnder(connection) ?? connection);
      for (const socket of connections) if (!busy.has(socket)) socket.destroy();
    });
  const tracked = () => {
    let count = 0;
    for (const responses of answering.values()) count += responses.size;
    return count;
  };
  return Object.assign(close, { tracked });
}

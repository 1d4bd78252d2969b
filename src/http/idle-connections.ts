// Closes HTTP(S) server connections that hold a socket without using it: no bytes either way
// for `idleMs` while no handler is still working on a response. Node sets no such bound: a
// client that asks and never reads the answers (pipelined requests) holds the socket for good,
// its responses stuck in the send buffer, since headersTimeout and requestTimeout only bound a
// request's arrival. server.timeout does not serve: Node turns the socket timeout off for every
// request after the first on a keep-alive connection. So each connection's byte counters are
// compared once a second, while any connection is open. A handler still at work is left alone however long it takes (a
// config reload).
//
// With `headersTimeoutMs`, the same sweep also answers 408 to a request head that has not come
// whole that long after its first bytes were seen. Node checks headersTimeout on a timer of its
// own that runs for the server's whole life (connectionsCheckingInterval, 30 s by default): a
// server that must not wake an idle process (the admin port) keeps that at its default and lets
// this sweep, which runs only while a connection is open, bound the head in time.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** How often Node checks headersTimeout and requestTimeout (its default, 30 s, let a 10 s headersTimeout run to 40 s); and the idle check's period. */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

interface Watched {
  moved: number;
  since: number;
  /** The latest request's response (its settling frees the head clock). */
  res?: ServerResponse;
  /**
   * Every response of the connection not yet closed: pipelined requests each have one, and a
   * quick one answered behind a slow one (a GET /healthz behind a POST /reload) is ended while
   * the slow handler still works, its answer queued behind the other's.
   */
  readonly responses: Set<ServerResponse>;
  /** bytesRead when the connection last had no request in flight (accepted, or its latest answer sent and its body ended). */
  readBetween: number;
  /** No request in flight: accepted, or the latest answer sent and the latest request's body ended. */
  between: boolean;
  /** When the sweep first saw bytes of a next request head (0: none yet). */
  headSince: number;
}

/** Node's own error for a head that took too long, so the server's 'clientError' answers it as it answers Node's. */
function headTimeout(): NodeJS.ErrnoException {
  return Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

/** Some handler of the connection has not ended its response yet (an ended one may still sit queued, unread by its client). */
function handlerAtWork(entry: Watched): boolean {
  for (const res of entry.responses) if (!res.writableEnded) return true;
  return false;
}

export function closeIdleConnections(server: HttpServer | HttpsServer, idleMs: number, checkEveryMs = CONNECTIONS_CHECKING_INTERVAL_MS, headersTimeoutMs = 0): void {
  const watched = new Map<Socket, Watched>();
  // the sweep runs only while a connection is open: an idle server wakes for nothing
  let timer: NodeJS.Timeout | undefined;
  const sweep = () => {
    // the process's running time: a wall clock stepped back kept idle connections for the step, one stepped ahead closed busy ones
    const now = performance.now();
    for (const [socket, entry] of watched) {
      if (headersTimeoutMs > 0 && entry.between && socket.bytesRead > entry.readBetween) {
        // bytes since the last answer and no request yet: a head on its way (seen up to one sweep late)
        if (entry.headSince === 0) entry.headSince = now;
        else if (now - entry.headSince >= headersTimeoutMs) {
          entry.headSince = 0;
          entry.readBetween = socket.bytesRead;
          server.emit('clientError', headTimeout(), socket);
          continue;
        }
      }
      // bytesWritten counts what is queued too: a stuck response does not move it
      const moved = socket.bytesRead + socket.bytesWritten;
      if (moved !== entry.moved) {
        entry.moved = moved;
        entry.since = now;
      } else if (now - entry.since >= idleMs && !handlerAtWork(entry)) {
        socket.destroy();
      }
    }
  };
  // on HTTPS the handshake has its own timeout; the idle clock starts once it is done
  const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
  server.on(event, (socket: Socket) => {
    watched.set(socket, { moved: socket.bytesRead + socket.bytesWritten, since: performance.now(), readBetween: socket.bytesRead, headSince: 0, between: true, responses: new Set() });
    // not unref'd: it lives only as long as an open connection, which holds the loop anyway
    if (timer === undefined) timer = setInterval(sweep, checkEveryMs);
    socket.once('close', () => {
      watched.delete(socket);
      if (watched.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry = watched.get(req.socket);
    if (!entry) return;
    entry.res = res;
    entry.responses.add(res);
    res.once('close', () => entry.responses.delete(res));
    entry.headSince = 0;
    entry.between = false;
    if (headersTimeoutMs > 0) {
      const socket = req.socket;
      // what the connection reads once this answer is sent and this request's body has ended is
      // the next request's. An answer may go before its body has come (GET /ready with a body,
      // POST /reload, which does not read it): Node keeps the connection and reads the rest of
      // the body after the answer (it dumps an unread body), so the connection serves the next
      // request; the head clock waits for that body's end, or its bytes were taken for a head
      // and answered 408 ten seconds later, a second answer to one request. A body that stops
      // midway leaves the connection to the idle timeout. (The CA, this helper's other user,
      // has no head clock; its idle check is unchanged.)
      const settled = () => {
        if (entry.res !== res) return;
        entry.readBetween = socket.bytesRead;
        entry.between = true;
      };
      res.once('finish', () => {
        if (req.complete) settled();
        else req.once('end', settled);
      });
    }
  });
  server.once('close', () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  });
}

// What the app's socket does to the request on an AppConnection (app-connection.ts) besides
// delivering bytes: a connection not up within the connect timeout, the app's FIN (it completes
// an answer delimited by the close, and fails anything else), a socket error, a write the app's
// hang-up failed (held, so an answer it gave first is still read), and the close
// (the connection leaves its pool). The listeners are made once per connection.

import type net from 'node:net';
import { APP_CLIENT_ERRORS, appClientError } from './app-dispatch.js';
import type { AppConnection } from './app-connection.js';
import { holdWriteHangUps } from './app-write-hang-up.js';

/** Listens to a new connection's socket ('end', 'error', 'close') and starts its connect timeout. */
export function listenToAppSocket(c: AppConnection, socket: net.Socket, connectTimeoutMs: number): void {
  socket.on('end', () => {
    if (c.handler !== undefined && c.finalHead && !c.responseDone) {
      // a body delimited by the close completes now; a short one is an error
      let result: Error | undefined;
      try {
        result = c.parser.finish();
      } catch (err) {
        c.fail(err);
        return;
      }
      if (result === undefined && c.responseDone) {
        c.keepAlive = false;
        c.complete();
        return;
      }
    }
    // a write that failed first on the reset behind this end names it (ECONNRESET, EPIPE)
    if (c.handler !== undefined) c.fail(c.finalHead ? appClientError(APP_CLIENT_ERRORS.closed, 'the app closed the connection before its answer was complete') : (c.writeHangUp ?? appClientError(APP_CLIENT_ERRORS.closed, 'the app closed the connection')));
    c.destroy();
  });
  // an app that answers an upload early and hangs up: its answer is read before the write's
  // failure counts (app-write-hang-up.ts); the body stops, the read side settles the request
  holdWriteHangUps(socket, (err) => {
    if (c.handler === undefined) {
      c.destroy();
      return true;
    }
    c.writeHangUp ??= err;
    c.stopBody();
    return true;
  });
  socket.on('error', (err: Error) => {
    if (c.handler !== undefined) c.fail(err);
    else c.destroy();
  });
  socket.on('close', () => {
    if (c.handler !== undefined) c.fail(appClientError(APP_CLIENT_ERRORS.closed, 'the app closed the connection'));
    c.closed = true;
    // never inside execute(): 'close' comes on a later tick than the destroy()
    c.parser.close();
    c.owner.closed(c);
  });
  // an app that drops SYNs (backlog full, host down) must not hold the request and its pool
  // slot for the kernel's two minutes of retries; one timer per new connection, gone once up
  socket.setTimeout(connectTimeoutMs, () => {
    if (!socket.connecting) return;
    const err = appClientError('ETIMEDOUT', `no connection to the app within ${connectTimeoutMs} ms`);
    if (c.handler !== undefined) c.fail(err);
    else c.destroy();
  });
  socket.once('connect', () => {
    socket.setTimeout(0);
  });
}

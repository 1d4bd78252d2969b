// The connector undici's pool toward the app opens its sockets with (app-undici-pool.ts):
// undici's own, plus one rename and one hold. undici takes a TCP reset (ECONNRESET) during an
// answer framed by the close (no Content-Length, not chunked; an HTTP/1.0 answer without a
// length) for the end of that answer, a workaround of its for Mac OS (client-h1.js,
// onHttpSocketError): an app that crashed mid-answer had its caller get the bytes so far as a
// complete 200, recorded as a success. A reset is a cut: the own client and node:http fail such
// an answer, as nginx and Envoy do. The rename, made before undici's listener sees the error
// (ours is added first, as the socket is handed over), keeps undici from reading it as an end;
// it fails the request instead, with a code the inbound reads as ECONNRESET
// (APP_CLIENT_ERRORS.reset). The hold: a write the app's hang-up failed is held
// (app-write-hang-up.ts), as the own client holds it, so undici reads the answer the app gave
// before it reset (an early answer to an upload), then the reset or the end.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { buildConnector as BuildConnector } from 'undici';
import { APP_CLIENT_ERRORS } from './app-dispatch.js';
import { holdWriteHangUps } from './app-write-hang-up.js';

type Connector = BuildConnector.connector;

/** undici's default connector (10 s connect timeout, as the pool had), its resets renamed. */
export function resetRenamingConnector(): Connector {
  const buildConnector = createRequire(import.meta.url)('undici/lib/core/connect.js') as typeof BuildConnector;
  const connect = buildConnector({});
  return (options, callback) =>
    connect(options, (err, socket) => {
      // a failed connect hands over no socket (undefined, whatever the types say)
      if (socket) {
        (socket as Socket).on('error', renameReset);
        // nothing more to do: undici stops writing on its own (no 'drain' comes), and the
        // read side brings the answer, the reset or the end
        holdWriteHangUps(socket as Socket, ignoreHangUp);
      }
      (callback as (err: Error | null, socket: Socket | null) => void)(err, socket);
    });
}

function ignoreHangUp(): boolean {
  return true;
}

function renameReset(err: NodeJS.ErrnoException): void {
  if (err.code === 'ECONNRESET') err.code = APP_CLIENT_ERRORS.reset;
}

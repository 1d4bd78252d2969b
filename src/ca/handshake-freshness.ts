// The CA server's TLS handshakes wait for a look at the CA folder first. The folder is changed
// by other processes (`meshcar ca root add|activate|retire`, `rotate-issuer`, `init --force`)
// and the server notices at its next look; looking per request came after the handshake, so the
// first connection after a change was made with the old chain (after a retire: an issuer under
// the retired root). A sidecar holding the current bundle failed that handshake, and one holding
// the stale bundle passed it and then blamed the CA's bundle.pem. Here Node's own TLS
// 'connection' listener is handed each accepted socket only once `beforeHandshake` has settled
// (a stat of state.json when nothing changed, a reload and a new server certificate when it did).

import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export function freshBeforeHandshake(server: Server, beforeHandshake: () => Promise<void>, logger: Logger): void {
  // tls.Server's constructor adds its listener first: it wraps the socket in a TLSSocket and
  // starts the handshake. The listeners added after it (connection-guard.ts) still run at accept.
  const [tlsListener] = server.listeners('connection') as Array<(socket: Socket) => void>;
  if (tlsListener === undefined) throw new Error('no TLS connection listener on the CA server');
  server.removeListener('connection', tlsListener);
  server.prependListener('connection', (socket: Socket) => {
    // bytes the client sends meanwhile (its ClientHello) wait in the socket: nothing reads it yet
    beforeHandshake()
      .catch((err: unknown) => logger.error({ err }, 'looking at the CA folder before a handshake failed; answering with the current certificate'))
      .finally(() => {
        // a guard (per-address limit) or the client may have closed it meanwhile
        if (!socket.destroyed) tlsListener.call(server, socket);
      });
  });
}

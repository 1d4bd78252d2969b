// Test helper: how a caller's mTLS connection to an inbound ended, for tests of what the inbound
// refuses in a handshake or at accept: served (the handshake done and an HTTP/1.1 request
// answered), refused in the handshake (the server spoke TLS, then closed), or closed at accept
// (nothing came back).

import tls from 'node:tls';
import type { InboundFixture } from './inbound-fixture.js';

export type Outcome = 'served' | 'refused in the handshake' | 'closed at accept';

/** How `socket` (a TLS client, its handshake under way) ends: it sends one GET once its handshake is done. */
export function outcomeOf(socket: tls.TLSSocket): Promise<Outcome> {
  return new Promise((resolve) => {
    let spoke = false;
    // TLS 1.3: the client's handshake ends before the server has judged its certificate
    socket.once('secureConnect', () => {
      spoke = true;
      socket.write('GET /x HTTP/1.1\r\nhost: orders\r\n\r\n');
    });
    socket.once('data', () => {
      socket.destroy();
      resolve('served');
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(spoke ? 'refused in the handshake' : 'closed at accept'));
  });
}

/** One connection to the inbound from `from` (a loopback address) with `credentials`, and how it ended. */
export function connectFrom(fx: InboundFixture, from: string, credentials: tls.ConnectionOptions, extra: tls.ConnectionOptions = {}): Promise<Outcome> {
  return outcomeOf(tls.connect({ host: '127.0.0.1', port: fx.port, localAddress: from, ALPNProtocols: ['http/1.1'], ca: fx.pki.bundlePem, ...credentials, checkServerIdentity: () => undefined, ...extra }));
}

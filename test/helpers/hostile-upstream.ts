// Test helper: a hostile upstream sidecar for the outbound's tests. It holds a valid mesh
// certificate (the upstream's SPIFFE ID, from the test PKI) and speaks HTTP/2 as raw frames over
// TLS, so a test decides every frame it answers with: resets, heads over the limits, SETTINGS
// that refuse, nothing at all. The outbound dials it like any endpoint. Loopback, port 0.

import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { TestPki } from './pki.js';
import { UPSTREAM_ID } from './outbound-fixture.js';
import { FRAME, readClientFrames, settingsFrame } from './raw-h2.js';


/** One accepted connection: write frames to it. */
export interface HostileConnection {
  readonly socket: tls.TLSSocket;
  write(frameBytes: Buffer): void;
}

export interface HostileUpstream {
  readonly port: number;
  /** Every connection accepted so far. */
  readonly connections: readonly HostileConnection[];
  /** HEADERS frames received (requests). */
  readonly requests: number;
  /** Connections not closed yet. */
  open(): number;
  close(): Promise<void>;
}

/**
 * `onRequest` runs for each HEADERS frame (a request) with its stream id; `settings` are the
 * server's first SETTINGS. SETTINGS are acknowledged, PINGs answered.
 */
export async function startHostileUpstream(pki: TestPki, onRequest: (c: HostileConnection, streamId: number) => void, settings: ReadonlyArray<readonly [number, number]> = []): Promise<HostileUpstream> {
  const leaf = await pki.issue(UPSTREAM_ID);
  const connections: HostileConnection[] = [];
  let requests = 0;
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (socket) => {
    socket.on('error', () => {});
    const c: HostileConnection = { socket, write: (bytes) => void (socket.destroyed || socket.write(bytes)) };
    connections.push(c);
    socket.write(settingsFrame(settings));
    readClientFrames(
      socket,
      (f) => {
        if (f.type !== FRAME.HEADERS) return;
        requests += 1;
        onRequest(c, f.streamId);
      },
      { answerPings: true },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    get requests() {
      return requests;
    },
    open: () => connections.filter((c) => !c.socket.destroyed).length,
    close: () => {
      for (const c of connections) c.socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Test helper: upstream "sidecars" that complete mutual TLS with ALPN h2 and then misbehave at
// the HTTP/2 layer: `silent` sends nothing at all (no SETTINGS: a hung peer), `zeroStreams`
// sends SETTINGS with MAX_CONCURRENT_STREAMS 0 (and acknowledges ours) but never a stream,
// `goawayAtConnect` sends its SETTINGS and a GOAWAY (NO_ERROR, last stream 0) in one write, as a
// server draining does to a new session, and keeps the connection open.
// Both count the TLS connections accepted and keep the open ones, for the test to watch.

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { UPSTREAM_ID } from './outbound-fixture.js';
import type { TestPki } from './pki.js';
import { FLAG, FRAME, SETTING, frame, settingsFrame } from './raw-h2.js';

export interface MisbehavingH2 {
  readonly port: number;
  /** TLS connections accepted so far. */
  readonly connections: number;
  /** TLS connections still open. */
  readonly open: number;
  /** Resolves once `open` is `n` or fewer; rejects after `timeoutMs`. */
  waitForOpenAtMost(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startMisbehavingH2(pki: TestPki, mode: 'silent' | 'zeroStreams' | 'goawayAtConnect'): Promise<MisbehavingH2> {
  const leaf = await pki.issue(UPSTREAM_ID);
  const sockets = new Set<tls.TLSSocket>();
  let connections = 0;
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    if (mode === 'silent') {
      socket.resume();
      return;
    }
    if (mode === 'goawayAtConnect') {
      // one write, one TLS record: the client reads both frames in one go
      socket.write(Buffer.concat([settingsFrame([]), frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8))]));
      socket.resume();
      return;
    }
    socket.write(settingsFrame([[SETTING.MAX_CONCURRENT_STREAMS, 0]]));
    // the client's SETTINGS get their ACK (after the 24-byte preface); nothing else is read
    let acked = false;
    socket.on('data', () => {
      if (acked) return;
      acked = true;
      socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    async waitForOpenAtMost(n, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      while (sockets.size > n) {
        if (Date.now() > until) throw new Error(`${sockets.size} connections still open, not ${n} or fewer, after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

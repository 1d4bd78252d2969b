// Test helper: a real sidecar pair in one process (outbound -> mutual TLS -> inbound, both with
// certificates from one test CA) with a raw TCP server as the upstream app, for WebSocket
// (Upgrade) tunnels end to end. The far app gets each connection once its request head is in,
// paused, and decides what to answer; the calling app is a raw socket (tunnelClient).

import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { SERVER_ID, startInbound, type InboundFixture } from './inbound-fixture.js';
import { startOutbound, type OutboundFixture } from './outbound-fixture.js';
import type { Logger } from 'pino';
import type { InboundLimits } from '../../src/inbound/inbound-contract.js';

/** Called with the far app's side of a connection, its request head, and any bytes after it. */
export type FarApp = (socket: net.Socket, head: string, rest: Buffer) => void;

export interface TunnelPair {
  readonly inbound: InboundFixture;
  readonly outbound: OutboundFixture;
  close(): Promise<void>;
}

export interface TunnelPairOptions {
  readonly inboundTunnelIdleTimeoutMs?: number;
  /** The outbound's upstream `tunnelIdleTimeout` (default: the sidecar's, 1 h). */
  readonly outboundTunnelIdleTimeoutMs?: number;
  /** Each side's `idleTimeout` for requests (a refused Upgrade's answer is one; default: the fixtures'). */
  readonly inboundIdleTimeoutMs?: number;
  readonly outboundIdleTimeoutMs?: number;
  /** http2.codec of both sidecars (default: the fixtures' own, MESHCAR_TEST_H2_CODEC or meshcar). */
  readonly codec?: 'meshcar' | 'node';
  /** The inbound sidecar's certificate lifetime (default: the fixture's, 1 h). */
  readonly serverLifetimeMs?: number;
  /** Each sidecar's logger (default: silent), for a test that reads their warn lines. */
  readonly inboundLogger?: Logger;
  readonly outboundLogger?: Logger;
  /** The inbound's limits (default: the fixture's). */
  readonly inboundLimits?: InboundLimits;
}

export async function startTunnelPair(far: FarApp, options: TunnelPairOptions = {}): Promise<TunnelPair> {
  const sockets = new Set<net.Socket>();
  // allowHalfOpen: the far app decides when its side ends, as a WebSocket server may
  const app = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      far(socket, buffered.subarray(0, end).toString('latin1'), buffered.subarray(end + 4));
    };
    socket.on('data', onData);
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const inbound = await startInbound({
    externalApp: { protocol: 'http', port: (app.address() as AddressInfo).port },
    ...(options.inboundTunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: options.inboundTunnelIdleTimeoutMs } : {}),
    ...(options.inboundIdleTimeoutMs !== undefined ? { idleTimeoutMs: options.inboundIdleTimeoutMs } : {}),
    ...(options.codec !== undefined ? { codec: options.codec } : {}),
    ...(options.serverLifetimeMs !== undefined ? { serverLifetimeMs: options.serverLifetimeMs } : {}),
    ...(options.inboundLogger !== undefined ? { logger: options.inboundLogger } : {}),
    ...(options.inboundLimits !== undefined ? { limits: options.inboundLimits } : {}),
  });
  const upstream = { name: 'orders', endpoints: [`127.0.0.1:${inbound.port}`], identity: SERVER_ID, ...(options.outboundTunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: options.outboundTunnelIdleTimeoutMs } : {}), ...(options.outboundIdleTimeoutMs !== undefined ? { idleTimeoutMs: options.outboundIdleTimeoutMs } : {}) };
  const outbound = await startOutbound(inbound.pki, [upstream], { ...(options.codec !== undefined ? { codec: options.codec } : {}), ...(options.outboundLogger !== undefined ? { logger: options.outboundLogger } : {}) });
  return {
    inbound,
    outbound,
    async close() {
      for (const socket of sockets) socket.destroy();
      await outbound.close();
      await inbound.close();
      await new Promise((resolve) => app.close(resolve));
    },
  };
}

export const UPGRADE_HEAD = 'GET /ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
export const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

/** Records a socket's endings in order: 'end' (a FIN), 'error:CODE', 'close'. */
export function endings(socket: net.Socket): { events: string[]; closed: Promise<void> } {
  const events: string[] = [];
  socket.on('end', () => events.push('end'));
  socket.on('error', (err: NodeJS.ErrnoException) => events.push(`error:${String(err.code)}`));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { events, closed };
}

/** The calling app: a raw connection (allowHalfOpen) to the outbound; resolves once the 101 is in. */
export async function openTunnel(port: number): Promise<{ socket: net.Socket; events: string[]; closed: Promise<void> }> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, 'connect');
  const seen = endings(socket);
  socket.write(UPGRADE_HEAD);
  let received = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (!received.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (received.startsWith('HTTP/1.1 101 ')) resolve();
      else reject(new Error(`no 101: ${received}`));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before a 101: ${received}`)));
  });
  socket.resume();
  return { socket, ...seen };
}

/** Waits (bounded) for the socket to close; what it saw. */
export async function closedWithin(tunnel: { events: string[]; closed: Promise<void> }, ms: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([tunnel.closed.then(() => 'close'), new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still open'), ms)))]);
  clearTimeout(timer);
  return [...tunnel.events, outcome];
}

/** A far app that switches at once and reads on; `seen()`: how its connection ended (once it has one). */
export function switchingFarApp(): { far: FarApp; seen: () => { events: string[]; closed: Promise<void> } } {
  let seen: { events: string[]; closed: Promise<void> } | undefined;
  const far: FarApp = (socket) => {
    seen = endings(socket);
    socket.write(SWITCHING);
    socket.resume();
  };
  return {
    far,
    seen: () => {
      if (seen === undefined) throw new Error('the far app has no tunnel yet');
      return seen;
    },
  };
}

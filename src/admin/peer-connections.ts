// A bound on the admin connections one peer address holds. The admin port may listen on every
// address (kubelet's probes and Prometheus come from outside the pod), so any pod of the
// cluster reaches it, and ADMIN_MAX_CONNECTIONS alone let one of them take every slot: 256
// keep-alive connections asking GET /healthz every few seconds are never idle, never pipelined
// and never timed out, and every new connection (the kubelet's liveness probe, Prometheus) was
// closed as it came (probes failed 24 of 24 in 25 s), so the kubelet restarted a healthy pod.
// Counted as TCP connections are accepted, as the CA counts its own (src/ca/connection-guard.ts);
// one past the bound is closed at once and logged, at most one line per peer per window.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { LogPerKey, leftOut } from '../log-per-key.js';

/**
 * Connections one peer address may hold open at once. A scraper holds one, the kubelet one per
 * probe, a browser through `kubectl port-forward` (loopback) six: far below; and an eighth of
 * ADMIN_MAX_CONNECTIONS, so one peer leaves most slots to the others.
 */
export const ADMIN_MAX_CONNECTIONS_PER_PEER = 32;

/** Closes each connection accepted from a peer that already holds `max`. */
export function boundConnectionsPerPeer(server: Server, max: number, logger: Logger): void {
  const open = new Map<string, number>();
  const refusals = new LogPerKey();
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? 'unknown';
    const count = open.get(peer) ?? 0;
    if (count >= max) {
      socket.destroy();
      const through = refusals.take(peer);
      if (through) logger.warn({ remote: peer }, `admin connection refused: ${peer} has ${max} open already (at most ${max} per peer address)${leftOut(through, `from ${peer}`)}`);
      return;
    }
    open.set(peer, count + 1);
    socket.once('close', () => {
      const left = (open.get(peer) ?? 1) - 1;
      // no entry kept for a peer with nothing open: the map is as big as the open connections
      if (left <= 0) open.delete(peer);
      else open.set(peer, left);
    });
  });
}

// A WebSocket (Upgrade) request's own connection to an upstream: a dedicated mutual TLS
// connection speaking HTTP/1.1 (an upgraded stream cannot ride a pooled HTTP/2 session), dialled
// with the pool's endpoints, failover and SPIFFE check, outside its session books.

import type { TLSSocket } from 'node:tls';
import { MeshcarError } from '../errors.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { connectMutualTls } from './mutual-tls.js';
import { withFailover } from './pool-failover.js';
import type { UpstreamPool } from './upstream-pool.js';

export interface OpenedTunnel {
  readonly socket: TLSSocket;
  readonly endpoint: UpstreamEndpoint;
}

/** A dedicated mutual TLS connection speaking HTTP/1.1 to one of the pool's endpoints. */
export function openTunnel(pool: UpstreamPool): Promise<OpenedTunnel> {
  return withFailover(pool, undefined, async (endpoint) => {
    const socket = await connectMutualTls(endpoint, {
      identity: pool.deps.identity,
      budgets: pool.deps.budgets,
      checkServerIdentity: pool.checkServerIdentity,
      alpn: ['http/1.1'],
      timeoutMs: pool.connectTimeoutMs,
      resettable: true, // an idle tunnel is cut with a reset (websocket.ts)
    });
    if (socket.alpnProtocol !== 'http/1.1') {
      socket.destroy();
      throw new MeshcarError('bad_gateway', `${endpoint.key} did not accept HTTP/1.1 for an upgrade (ALPN ${String(socket.alpnProtocol)})`);
    }
    return { socket, endpoint };
  });
}

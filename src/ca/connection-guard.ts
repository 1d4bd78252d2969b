// What one client may hold of the CA port: the CA is reachable by every workload, and without
// these one address could take every connection slot with keep-alive connections that ask for
// /healthz now and then (never idle, never rate limited) while sidecars got ECONNRESET.
// - open connections per remote address, counted as TCP connections are accepted (before the
//   TLS handshake, so a refusal costs no crypto); at that bound the address's own oldest
//   connection with no request in flight makes room for its new one;
// - open connections in all: at the cap the oldest with no request in flight is closed for the
//   new one (src/http/connection-slots.ts), so connections that do nothing, from however many
//   addresses, cannot shut the sidecars out;
// - requests and age per connection: the answer to the last request says `Connection: close`
//   and the connection closes after it, so no connection holds its slot for good;
// - every refused connection is counted (meshcar_ca_connections_refused_total{reason}) and
//   logged at warn, at most one line per address per window (the next says how many were not).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.js';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import { capConnectionsEvictingIdle } from '../http/connection-slots.js';

export interface ConnectionGuardLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly maxRequestsPerConnection: number;
  readonly maxConnectionAgeMs: number;
}

export type RefusalReason = 'max_connections' | 'idle_evicted' | 'per_address_limit';
const EVERY_REFUSAL_REASON: Record<RefusalReason, true> = { max_connections: true, idle_evicted: true, per_address_limit: true };
export const REFUSAL_REASONS = Object.keys(EVERY_REFUSAL_REASON) as readonly RefusalReason[];

/** Warn lines about refused connections, at most one per address per window. */
class RefusalLog {
  private readonly perAddress = new LogPerKey();

  constructor(private readonly logger: Logger) {}

  refused(address: string, reason: RefusalReason, message: string): void {
    const through = this.perAddress.take(address);
    if (through === undefined) return;
    this.logger.warn({ remoteAddress: address, reason, ...leftOutFields(through) }, `CA connection refused: ${message}${leftOut(through, 'refused')}`);
  }
}

interface ConnectionUse {
  readonly openedAt: number;
  requests: number;
}

const uses = new WeakMap<Socket, ConnectionUse>();

export function guardConnections(server: Server, limits: ConnectionGuardLimits, metrics: Metrics, logger: Logger): void {
  const log = new RefusalLog(logger);
  // every reason at 0 from the start, as the denials are: a series born at 1 has no increase()
  for (const reason of REFUSAL_REASONS) metrics.caConnectionsRefused.labels(reason).inc(0);
  const refuse = (address: string, reason: RefusalReason, message: string) => {
    metrics.caConnectionsRefused.labels(reason).inc();
    log.refused(address, reason, message);
  };

  // 'connection' is the accepted TCP socket: the TLS handshake has not started
  server.on('connection', (socket: Socket) => {
    uses.set(socket, { openedAt: performance.now(), requests: 0 });
  });
  // per address, then in all (connection-slots.ts): at an address's cap its own oldest idle
  // connection makes room for its new one (every process of a host shares one address: closing
  // the newcomer let one of them, renewing its keep-alive connections' requests, shut the
  // host's other sidecars out of their renewals); at the CA's cap the oldest idle one, anyone's
  const perAddress = limits.maxConnectionsPerAddress;
  capConnectionsEvictingIdle(server, { max: limits.maxConnections, maxPerAddress: perAddress }, {
    evictedOwn: (address) => refuse(address, 'idle_evicted', `${address} had ${perAddress} connections open (at most ${perAddress} per address): its oldest with no request in flight was closed for its new one`),
    refusedOwn: (address) => refuse(address, 'per_address_limit', `${address} has ${perAddress} connections open already, each with a request in flight (at most ${perAddress} per address)`),
    evicted: (address) => refuse(address, 'idle_evicted', `${limits.maxConnections} connections were open: one with no request in flight, from ${address}, was closed for a new one`),
    // counted as the cap's: a connection closed at it, each open one with a request in flight
    evictedBusy: (address, held) => refuse(address, 'max_connections', `${limits.maxConnections} connections were open: one with a request in flight, the oldest of the ${held} from ${address}, the address holding the most, was closed for one from another address`),
    refused: (address) => refuse(address, 'max_connections', `${limits.maxConnections} connections are open already, none of which may make room (each with a request in flight, or just opened, and no address holding more than one more than this one's)`),
  });
  // before the handler writes anything (a /healthz answer is written at once)
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    // the TLS socket wraps the accepted one, which is what was counted
    const socket = req.socket as Socket & { _parent?: Socket | null };
    const use = uses.get(socket) ?? (socket._parent ? uses.get(socket._parent) : undefined);
    if (use === undefined) return;
    use.requests += 1;
    if (use.requests >= limits.maxRequestsPerConnection || performance.now() - use.openedAt >= limits.maxConnectionAgeMs) {
      // Node ends the connection once this answer is out
      res.setHeader('connection', 'close');
    }
  });
}

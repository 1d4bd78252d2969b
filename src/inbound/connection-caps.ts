// What one peer may hold of the inbound port's connections. Without these, connections were
// bounded only in time: a verified caller's idle HTTP/2 connection lives until its maximum age
// (10 min), and a busy one (or a WebSocket tunnel) for as long as the caller keeps it busy, so
// one caller could open connections until the process ran out of file descriptors (EMFILE:
// every other caller refused) or memory (~50-75 KB each); and anyone who can reach the port
// holds one per TCP connection for the handshake timeout (10 s) without a certificate.
// - TLS handshakes in progress per remote address, counted as TCP connections are accepted
//   (before any crypto) until the handshake ends: beyond the cap the connection is closed;
// - verified connections per caller SPIFFE ID (every ALPN, every certificate of the
//   identity), counted from the handshake until the connection closes: beyond the cap the
//   connection is closed before a request is read.
// Each refusal is counted (meshcar_inbound_connections_refused_total{reason}) and logged at warn,
// at most one line per address or identity per 10 s.

import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import type { InboundConnectionRefusal, TrafficObserver } from '../metrics/traffic.js';

// The caps' values: inbound.limits.maxHandshakesPerAddress (default 256: callers are sidecars
// that dial a few sessions, one per worker and endpoint, and a connection per WebSocket) and
// maxConnectionsPerCaller (default 1024: an identity's replicas' sessions and tunnels).

export interface ConnectionCapLimits {
  readonly maxHandshakesPerAddress: number;
  readonly maxConnectionsPerCaller: number;
}

const kHandshakeDone = Symbol('meshcar.inbound.handshakeDone');
type Counted = Socket & { [kHandshakeDone]?: () => void };

/** A count per key that forgets keys at zero. */
class Counts {
  private readonly byKey = new Map<string, number>();
  get(key: string): number {
    return this.byKey.get(key) ?? 0;
  }
  add(key: string): void {
    this.byKey.set(key, this.get(key) + 1);
  }
  remove(key: string): void {
    const left = this.get(key) - 1;
    if (left <= 0) this.byKey.delete(key);
    else this.byKey.set(key, left);
  }
}

export class ConnectionCaps {
  private readonly handshakes = new Counts();
  private readonly callers = new Counts();
  private readonly log = new LogPerKey();

  constructor(
    private readonly limits: ConnectionCapLimits,
    private readonly logger: Logger,
    private readonly observer: TrafficObserver,
  ) {}

  /** Counts `server`'s handshakes per address; refuses those over the cap as they are accepted. */
  watchHandshakes(server: TlsServer): void {
    // the accepted TCP socket, before the TLS handshake (the server's own listener wrapped it already)
    server.on('connection', (raw: Counted) => {
      const address = raw.remoteAddress ?? 'unknown';
      const open = this.handshakes.get(address);
      if (open >= this.limits.maxHandshakesPerAddress) {
        raw.destroy();
        this.refuse('handshake_limit', address, `${address} has ${open} TLS handshakes in progress already (at most ${this.limits.maxHandshakesPerAddress})`);
        return;
      }
      this.handshakes.add(address);
      let counted = true;
      const done = () => {
        if (!counted) return;
        counted = false;
        this.handshakes.remove(address);
      };
      raw[kHandshakeDone] = done;
      raw.once('close', done);
    });
    // before the listener's own handler, which may hand the socket on or destroy it
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      const raw = (socket as TLSSocket & { _parent?: Counted | null })._parent ?? (socket as Counted);
      raw[kHandshakeDone]?.();
    });
  }

  /** A verified connection of `identity`: false (nothing counted) when the identity has its cap open already. */
  admitCaller(socket: Socket, identity: string): boolean {
    const open = this.callers.get(identity);
    if (open >= this.limits.maxConnectionsPerCaller) {
      this.refuse('caller_limit', identity, `${identity} has ${open} connections open already (at most ${this.limits.maxConnectionsPerCaller})`);
      return false;
    }
    this.callers.add(identity);
    socket.once('close', () => this.callers.remove(identity));
    return true;
  }

  private refuse(reason: InboundConnectionRefusal, key: string, message: string): void {
    this.observer.inboundConnectionRefused?.(reason);
    const through = this.log.take(`${reason} ${key}`);
    if (through === undefined) return;
    this.logger.warn({ reason, ...(reason === 'caller_limit' ? { peer: key } : { remote: key }), ...leftOutFields(through) }, `inbound connection refused: ${message}${leftOut(through, 'refused')}`);
  }
}

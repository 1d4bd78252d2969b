// What one peer may hold of the inbound port's connections. Without these, connections were
// bounded only in time: a verified caller's idle HTTP/2 connection lives until its maximum age
// (10 min), and a busy one (or a WebSocket tunnel) for as long as the caller keeps it busy, so
// one caller could open connections until the process ran out of file descriptors (EMFILE:
// every other caller refused) or memory (~50-75 KB each); and anyone who can reach the port
// holds one per TCP connection for the handshake timeout (10 s) without a certificate.
// - TLS handshakes in progress per remote address, counted as TCP connections are accepted
//   (before any crypto) until the handshake ends: beyond the cap the connection is closed;
// - TLS handshakes in progress on the listener, all addresses together: the per-address cap
//   alone let a few addresses (pods, a node's IPv6 range) hold a half-done handshake each per
//   connection, ~60 KB and a descriptor apiece (3,000 from 12 loopback addresses: +180 MB RSS),
//   without bound. At the cap the OLDEST handshake in progress is closed and the new one taken
//   (as a slowloris defence evicts the longest-waiting): a real caller's handshake takes a few
//   milliseconds, so it finishes among stalled ones unless thousands of connections arrive within
//   those milliseconds, where refusing the new one would lock every caller out for as long as the
//   stalled ones are held (the handshake timeout, again and again);
// - verified connections per caller SPIFFE ID (every ALPN, every certificate of the
//   identity), counted from the handshake until the connection closes: beyond the cap the
//   connection is closed before a request is read.
// - an address (or IPv6 /64) whose failed handshakes cost more than their budget (their
//   certificate chains checked: tls-failures/costly-chains.ts, handshake-budgets.ts): its other handshakes in
//   progress closed, its new connections refused at accept for a while.
// Each refusal is counted (meshcar_inbound_connections_refused_total{reason}) and logged at warn,
// at most one line per address or identity per 10 s.

import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import { addressKeys, AddressPenalties } from '../tls-failures/handshake-budgets.js';
import { acceptedSocketOf } from '../tls-failures/gated-server.js';
import type { InboundConnectionRefusal, TrafficObserver } from '../metrics/traffic.js';

// The caps' values: inbound.limits.maxHandshakesPerAddress (default 256: callers are sidecars
// that dial a few sessions, one per worker and endpoint, and a connection per WebSocket) and
// maxConnectionsPerCaller (default 1024: an identity's replicas' sessions and tunnels), and
// maxHandshakes (default 1024: about 60 MB of handshake state at most, four addresses' worth).

export interface ConnectionCapLimits {
  readonly maxHandshakesPerAddress: number;
  readonly maxHandshakes: number;
  readonly maxConnectionsPerCaller: number;
}

const kHandshakeDone = Symbol('meshcar.inbound.handshakeDone');
const kAddressKeys = Symbol('meshcar.inbound.addressKeys');
type Counted = Socket & { [kHandshakeDone]?: () => void; [kAddressKeys]?: readonly string[] };

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
  /** Every connection whose handshake is in progress, oldest first (a Set keeps insertion order). */
  private readonly inProgress = new Set<Counted>();
  private readonly callers = new Counts();
  private readonly log = new LogPerKey();
  private readonly penalties = new AddressPenalties(() => performance.now());

  constructor(
    private readonly limits: ConnectionCapLimits,
    private readonly logger: Logger,
    private readonly observer: TrafficObserver,
  ) {}

  /** Counts `server`'s handshakes per address and in all; refuses those over the address's cap as they are accepted, and at the listener's cap closes the oldest for the new one. */
  watchHandshakes(server: TlsServer): void {
    // the accepted TCP socket, before the TLS handshake (the server's own listener wrapped it already)
    server.on('connection', (raw: Counted) => {
      const address = raw.remoteAddress ?? 'unknown';
      const keys = addressKeys(address);
      const waiting = this.penalties.refused(keys);
      if (waiting !== undefined) {
        raw.destroy();
        this.refuse('chain_refused', waiting.key, `failed TLS handshakes from ${waiting.key} cost more than their budget (their certificate chains checked): its connections are refused for ${Math.ceil(waiting.ms / 1000)} s more`);
        return;
      }
      const open = this.handshakes.get(address);
      if (open >= this.limits.maxHandshakesPerAddress) {
        raw.destroy();
        this.refuse('handshake_limit', address, `${address} has ${open} TLS handshakes in progress already (at most ${this.limits.maxHandshakesPerAddress})`);
        return;
      }
      if (!this.penalties.reserve(keys)) {
        raw.destroy();
        this.refuse('chain_refused', keys[0]!, `what failed TLS handshakes from ${keys[0]!} have spent of their budget leaves no room for another now (each in progress holds 4 KiB of it: their certificate chains are checked before they fail)`);
        return;
      }
      if (this.inProgress.size >= this.limits.maxHandshakes) this.evictOldest();
      this.handshakes.add(address);
      this.inProgress.add(raw);
      let counted = true;
      const done = () => {
        if (!counted) return;
        counted = false;
        this.handshakes.remove(address);
        this.inProgress.delete(raw);
        this.penalties.release(keys);
      };
      raw[kHandshakeDone] = done;
      raw[kAddressKeys] = keys;
      raw.once('close', done);
    });
    // before the listener's own handler, which may hand the socket on or destroy it
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      const raw = (acceptedSocketOf(socket) as Counted | undefined) ?? (socket as Counted);
      raw[kHandshakeDone]?.();
    });
  }

  /**
   * A handshake from `address` failed after `bytes` were read from it (`costly`: judged costly
   * where it failed, tls-failures/costly-chains.ts). When that spends the budget of the address or its
   * /64, the handshakes in progress from there are closed now (this runs before their next read:
   * each may hold a chain as costly) and new connections refused at accept for a while.
   */
  handshakeFailed(address: string, bytes: number, costly: boolean): void {
    const spent = this.penalties.failedHandshake(addressKeys(address), bytes, costly);
    if (spent === undefined) return;
    let closed = 0;
    for (const raw of this.inProgress) {
      if (!raw[kAddressKeys]?.includes(spent.key)) continue;
      raw[kHandshakeDone]?.();
      raw.destroy();
      closed++;
    }
    for (let i = 0; i < closed; i++) this.observer.inboundConnectionRefused?.('chain_refused');
    const through = this.log.take(`chain_refused_now ${spent.key}`);
    if (through === undefined) return;
    const others = closed > 0 ? ` (its ${closed} other TLS handshakes in progress closed)` : '';
    const what = costly ? 'a failed TLS handshake whose certificates were costly to check, or could not be seen after the caller could send them' : `failed TLS handshakes beyond their budget (${bytes} bytes read by the last; checking the chains they carry can take the CPU)`;
    this.logger.warn({ reason: 'chain_refused', remote: address, key: spent.key, refusedMs: spent.ms, ...leftOutFields(through) }, `inbound: ${what} from ${spent.key}; new connections from there are refused for ${spent.ms / 1000} s${others}${leftOut(through, 'refused')}`);
  }

  /** The listener has maxHandshakes in progress: the one that has waited longest is closed. */
  private evictOldest(): void {
    const oldest = this.inProgress.values().next().value;
    if (oldest === undefined) return;
    // its 'close' (done) comes later; the count must drop now, for the new one to take its place
    oldest[kHandshakeDone]?.();
    oldest.destroy();
    // one line per window for the whole listener: the addresses may be many
    this.refuse('handshake_total_limit', '', `${this.limits.maxHandshakes} TLS handshakes were in progress (inbound.limits.maxHandshakes): the oldest, from ${oldest.remoteAddress ?? 'unknown'}, was closed`);
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
    this.logger.warn({ reason, ...(reason === 'caller_limit' ? { peer: key } : key !== '' ? { remote: key } : {}), ...leftOutFields(through) }, `inbound connection refused: ${message}${leftOut(through, 'refused')}`);
  }
}

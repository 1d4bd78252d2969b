// Failed TLS handshakes, where an operator looks: one warn log line per failure, at most one per
// peer address per window (the next line says how many were left out), and the last 100 with
// the same fields for GET /debug/tls, newest first. Every failure is recorded; only the log is
// rate-limited, so a scanner or a misconfigured client cannot flood it.

import type { Logger } from 'pino';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import type { Direction, TlsFailureDetail, TlsFailureReason } from '../metrics/traffic.js';

/** Failures kept for GET /debug/tls (with workers > 1: in each worker, and in the merged answer). */
export const TLS_FAILURES_KEPT = 100;

export interface TlsFailureEntry {
  readonly time: string;
  readonly direction: Direction;
  readonly peer: string;
  readonly reason: TlsFailureReason;
  readonly message: string;
}

export interface FailureLogOptions {
  /** Per peer address, at most one log line this often (default 10 s). */
  readonly windowMs?: number;
  /** Entries kept for /debug/tls (default 100). */
  readonly capacity?: number;
}

export class TlsFailureLog {
  private readonly entries: TlsFailureEntry[] = [];
  private next = 0;
  private readonly perPeer: LogPerKey;
  private readonly capacity: number;

  constructor(
    private readonly logger: Logger,
    options: FailureLogOptions = {},
  ) {
    this.perPeer = new LogPerKey(options.windowMs ?? 10_000);
    this.capacity = options.capacity ?? TLS_FAILURES_KEPT;
  }

  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail): void {
    const entry: TlsFailureEntry = { time: new Date().toISOString(), direction, peer: detail?.peer ?? 'unknown', reason, message: detail?.message ?? reason };
    if (this.entries.length < this.capacity) this.entries.push(entry);
    else this.entries[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
    this.maybeLog(entry);
  }

  /** The kept failures, newest first. */
  recent(): TlsFailureEntry[] {
    const ordered = this.entries.length < this.capacity ? [...this.entries] : [...this.entries.slice(this.next), ...this.entries.slice(0, this.next)];
    return ordered.reverse();
  }

  private maybeLog(entry: TlsFailureEntry): void {
    // the address without the port: each connection comes from a new port
    const address = entry.peer.replace(/:\d+$/, '');
    const through = this.perPeer.take(address);
    if (through === undefined) return;
    this.logger.warn(
      { direction: entry.direction, peer: entry.peer, reason: entry.reason, ...leftOutFields(through) },
      `TLS handshake failed, ${entry.direction} ${entry.direction === 'inbound' ? 'from' : 'to'} ${entry.peer}: ${entry.message}${leftOut(through, `from ${address}`)}`,
    );
  }

  // the rest of the observer interface: nothing to do
  requestFinished(): void {}
  upstreamSessionsChanged(): void {}
  upstreamStreamsChanged(): void {}
}

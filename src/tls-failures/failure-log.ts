// Failed TLS handshakes, where an operator looks: one warn log line per failure, at most one per
// peer address per window (the next line says how many were left out), and the last 100 with
// the same fields for GET /debug/tls, newest first, at most 10 of them from one address. Every
// failure is counted; the log is rate-limited and the list shared out, so a scanner or a
// misconfigured client can neither flood the log nor push everyone else's failures off the list.

import type { Logger } from 'pino';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';
import type { Direction, TlsFailureDetail, TlsFailureReason } from '../metrics/traffic.js';

/** Failures kept for GET /debug/tls (with workers > 1: in each worker, and in the merged answer). */
export const TLS_FAILURES_KEPT = 100;

/** Of those, at most this many from one peer address: its newest. */
export const TLS_FAILURES_KEPT_PER_ADDRESS = 10;

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
  /** Of those, at most this many from one address (default 10). */
  readonly perAddress?: number;
}

/**
 * The kept failures and their rule: at most `capacity`, at most `perAddress` of them from one
 * address; an address at its share gives up its own oldest entry, a full list its oldest. One
 * process keeps its own in one (TlsFailureLog); with workers > 1 the primary puts the workers'
 * lists through one too (cluster-views.ts), so the merged answer keeps the same shares.
 */
export class KeptFailures {
  /** Oldest first: a failure is rare next to a request, so dropping one from the middle (a splice of at most 100) is cheap. */
  private readonly entries: Array<TlsFailureEntry & { readonly address: string }> = [];
  /** How many of `entries` each address holds. */
  private readonly perAddressCount = new Map<string, number>();
  private readonly perAddress: number;

  constructor(
    private readonly capacity = TLS_FAILURES_KEPT,
    perAddress = TLS_FAILURES_KEPT_PER_ADDRESS,
  ) {
    this.perAddress = Math.min(perAddress, capacity);
  }

  /** Keeps `entry`, the newest so far. */
  add(entry: TlsFailureEntry): void {
    const address = addressOf(entry.peer);
    const held = this.perAddressCount.get(address) ?? 0;
    // an address at its share gives up its own oldest entry, not someone else's
    if (held >= this.perAddress) this.drop(this.entries.findIndex((e) => e.address === address));
    else if (this.entries.length >= this.capacity) this.drop(0);
    this.entries.push({ ...entry, address });
    this.perAddressCount.set(address, (this.perAddressCount.get(address) ?? 0) + 1);
  }

  /** The kept failures, newest first. */
  recent(): TlsFailureEntry[] {
    const ordered: TlsFailureEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const { address: _address, ...entry } = this.entries[i]!;
      ordered.push(entry);
    }
    return ordered;
  }

  private drop(index: number): void {
    const [gone] = this.entries.splice(index, 1);
    if (gone === undefined) return;
    const left = (this.perAddressCount.get(gone.address) ?? 1) - 1;
    if (left === 0) this.perAddressCount.delete(gone.address);
    else this.perAddressCount.set(gone.address, left);
  }
}

export class TlsFailureLog {
  private readonly kept: KeptFailures;
  private readonly perPeer: LogPerKey;

  constructor(
    private readonly logger: Logger,
    options: FailureLogOptions = {},
  ) {
    this.perPeer = new LogPerKey(options.windowMs ?? 10_000);
    this.kept = new KeptFailures(options.capacity, options.perAddress);
  }

  tlsHandshakeFailed(direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail): void {
    const entry: TlsFailureEntry = { time: new Date().toISOString(), direction, peer: detail?.peer ?? 'unknown', reason, message: detail?.message ?? reason };
    this.kept.add(entry);
    this.maybeLog(entry, addressOf(entry.peer));
  }

  /** The kept failures, newest first. */
  recent(): TlsFailureEntry[] {
    return this.kept.recent();
  }

  private maybeLog(entry: TlsFailureEntry, address: string): void {
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

/** The address without the port: each connection comes from a new port. */
function addressOf(peer: string): string {
  return peer.replace(/:\d+$/, '');
}

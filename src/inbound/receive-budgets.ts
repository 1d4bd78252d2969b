// The meshcar codec's receive budget of each caller identity (src/h2/receive-budget.ts): every
// HTTP/2 connection of one SPIFFE ID shares one, so a caller that opens more connections, each
// filling its streams' windows toward an app that does not read, gets no more memory than one
// connection could hold. It carries the caller's reset counts too (rapid reset, MadeYouReset,
// buffer_limit), so it is kept while the identity has a connection open and for one budget
// window (10 s) after its last one closed: forgotten at once, a caller resetting its allowance
// on one connection after another started each afresh.

import { ReceiveBudget } from '../h2/index.js';

// The budget's size: inbound.limits.maxBufferedPerCaller (default 64 MiB, one connection's
// whole receive window: 250 streams × 256 KiB = 62.5 MiB, and a little more).

/** How long a budget outlives its identity's last connection: the reset counts' window (src/h2/limits.ts budgetWindowMs). */
export const KEPT_AFTER_LAST_CONNECTION_MS = 10_000;

interface Entry {
  budget: ReceiveBudget;
  connections: number;
  /** When its last connection closed (performance.now()), while it has none. */
  idleSinceMs: number;
}

export class ReceiveBudgets {
  private readonly byIdentity = new Map<string, Entry>();
  private lastSweepMs = 0;

  constructor(private readonly maxBytes: number) {}

  /** The identity's budget, for one more connection of it (release() when it closes). */
  take(identity: string, nowMs = performance.now()): ReceiveBudget {
    this.sweep(nowMs);
    let entry = this.byIdentity.get(identity);
    if (entry === undefined) this.byIdentity.set(identity, (entry = { budget: new ReceiveBudget(this.maxBytes), connections: 0, idleSinceMs: 0 }));
    entry.connections++;
    return entry.budget;
  }

  release(identity: string, nowMs = performance.now()): void {
    const entry = this.byIdentity.get(identity);
    if (entry !== undefined && --entry.connections <= 0) entry.idleSinceMs = nowMs;
  }

  /** Identities tracked now (with a connection, or within the window after their last). */
  get size(): number {
    return this.byIdentity.size;
  }

  /** Forgets the budgets idle past the window; at most once a second, so a burst of handshakes walks the map once. */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < 1_000) return;
    this.lastSweepMs = nowMs;
    for (const [identity, entry] of this.byIdentity) {
      if (entry.connections <= 0 && nowMs - entry.idleSinceMs >= KEPT_AFTER_LAST_CONNECTION_MS) this.byIdentity.delete(identity);
    }
  }
}

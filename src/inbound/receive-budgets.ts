// The meshcar codec's receive budget of each caller identity (src/h2/receive-budget.ts): every
// HTTP/2 connection of one SPIFFE ID shares one, so a caller that opens more connections, each
// filling its streams' windows toward an app that does not read, gets no more memory than one
// connection could hold. Kept while the identity has a connection open, then forgotten.

import { ReceiveBudget } from '../h2/index.js';

// The budget's size: inbound.limits.maxBufferedPerCaller (default 64 MiB, one connection's
// whole receive window: 250 streams × 256 KiB = 62.5 MiB, and a little more).

export class ReceiveBudgets {
  private readonly byIdentity = new Map<string, { budget: ReceiveBudget; connections: number }>();

  constructor(private readonly maxBytes: number) {}

  /** The identity's budget, for one more connection of it (release() when it closes). */
  take(identity: string): ReceiveBudget {
    let entry = this.byIdentity.get(identity);
    if (entry === undefined) this.byIdentity.set(identity, (entry = { budget: new ReceiveBudget(this.maxBytes), connections: 0 }));
    entry.connections++;
    return entry.budget;
  }

  release(identity: string): void {
    const entry = this.byIdentity.get(identity);
    if (entry !== undefined && --entry.connections <= 0) this.byIdentity.delete(identity);
  }
}

// A bound on the peer bytes several connections may hold at once, shared by the connections
// given the same ReceiveBudget (the inbound gives one per caller identity). Each connection's
// own bound is its receive window (limits.ts: 62.5 MiB by default, so streams whose readers
// are slow never stall the others); without a shared one, a peer that opens N connections and
// fills every stream window toward an app that does not read holds N times that, as many
// connections as it likes. A DATA frame that would take the budget past its bound resets its
// stream (ENHANCE_YOUR_CALM, reason buffer_limit; as Node's core http2 resets a stream over
// its session's maxSessionMemory); the bytes the stream held are let go with it.
// Counted: every flow-controlled byte a stream accepted, until its credit goes back (the
// consumer took it, or the stream went away) or the connection ends.
// The streams reset for it, the caller's own premature resets and those at their deadlines,
// and the streams completed, are counted here too, across the connections (each connection's
// ResetBudget also counts its own): a caller spreading streams over many connections got each
// connection's whole allowance of such resets, a reconnect all a GOAWAY cost it.

import type { ResetBudget } from './limits.js';

export class ReceiveBudget {
  /** Bytes held now by every connection sharing this budget. */
  held = 0;
  /** The sharing connections' resets and completed streams, one window (made by the first connection, with its limits). */
  resets: ResetBudget | undefined;
  constructor(readonly maxBytes: number) {}

  /** Whether `n` more bytes fit. */
  fits(n: number): boolean {
    return this.held + n <= this.maxBytes;
  }
}

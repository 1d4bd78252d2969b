// At most one log line per key (a peer's address) per window, so one noisy client cannot flood
// the log: the lines in between are counted, and the next line that is let through says how
// many were left out. Keys are remembered up to a cap; beyond it the oldest are forgotten.
// And at most `maxLinesPerWindow` lines per window for all keys together: a client with many
// addresses (an IPv6 /64 is 2^64 of them; a failed TLS handshake needs no identity) is a new
// key each time, and would otherwise write a line per address. A line held back by that budget
// is counted on its key like any other, and said by the key's next line let through.
// Used for the warn lines about refused connections, failed TLS handshakes and abusive sessions.

/** A line let through: how many for the same key were left out since the last one, and over how long. */
export interface LetThrough {
  readonly suppressed: number;
  readonly seconds: number;
}

interface Seen {
  /** When a line for the key was last let through (-Infinity: never). */
  at: number;
  /** Lines left out since `since` (the last line let through, or the first left out). */
  suppressed: number;
  since: number;
}

export class LogPerKey {
  private readonly last = new Map<string, Seen>();
  private windowStart = -Infinity;
  private linesInWindow = 0;

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxKeys = 4096,
    private readonly maxLinesPerWindow = 100,
  ) {}

  /** Whether a line for `key` is logged now: undefined when not (it is counted instead). */
  take(key: string): LetThrough | undefined {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.windowMs) {
      seen.suppressed += 1;
      return undefined;
    }
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= this.maxLinesPerWindow) {
      if (seen) seen.suppressed += 1;
      else this.remember(key, { at: -Infinity, suppressed: 1, since: now });
      return undefined;
    }
    this.linesInWindow += 1;
    this.remember(key, { at: now, suppressed: 0, since: now });
    return { suppressed: seen?.suppressed ?? 0, seconds: Math.round((now - (seen?.since ?? now)) / 1000) };
  }

  private remember(key: string, entry: Seen): void {
    if (!this.last.has(key) && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string);
    // deleted and set again: the map's order is the order keys were last logged, oldest first
    this.last.delete(key);
    this.last.set(key, entry);
  }
}

/** The end of a line let through: `what` names the lines left out ("refused", "from 10.0.0.1"); empty when none were. */
export function leftOut(through: LetThrough, what: string): string {
  return through.suppressed > 0 ? ` (and ${through.suppressed} more ${what} in the last ${through.seconds} s, not logged)` : '';
}

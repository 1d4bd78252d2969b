// At most one log line per key (a peer's address) per window, so one noisy client cannot flood
// the log: the lines in between are counted, and the next line that is let through says how
// many were left out. Keys are remembered up to a cap; beyond it the oldest are forgotten.
// Used for the warn lines about refused CA connections and failed TLS handshakes.

/** A line let through: how many for the same key were left out since the last one, and over how long. */
export interface LetThrough {
  readonly suppressed: number;
  readonly seconds: number;
}

export class LogPerKey {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxKeys = 4096,
  ) {}

  /** Whether a line for `key` is logged now: undefined when not (it is counted instead). */
  take(key: string): LetThrough | undefined {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.windowMs) {
      seen.suppressed += 1;
      return undefined;
    }
    if (!seen && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string);
    // deleted and set again: the map's order is the order keys were last logged, oldest first
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    return { suppressed: seen?.suppressed ?? 0, seconds: Math.round((now - (seen?.at ?? now)) / 1000) };
  }
}

/** The end of a line let through: `what` names the lines left out ("refused", "from 10.0.0.1"); empty when none were. */
export function leftOut(through: LetThrough, what: string): string {
  return through.suppressed > 0 ? ` (and ${through.suppressed} more ${what} in the last ${through.seconds} s, not logged)` : '';
}

// At most one log line per key (a peer's address) per window, so one noisy client cannot flood
// the log: the lines in between are counted, and the next line that is let through says how
// many were left out. Keys are remembered up to a cap; beyond it the oldest are forgotten.
// And at most `maxLinesPerWindow` lines per window for all keys together: a client with many
// addresses (an IPv6 /64 is 2^64 of them; a failed TLS handshake needs no identity) is a new
// key each time, and would otherwise write a line per address. A line held back by that budget
// is counted for all keys together and said by the next line let through, whatever its key:
// counted on its own key, it was said only if that key came back, and a scanner's addresses
// never do (150 of them: 100 lines, and nothing in the log said 50 were left out).
// Used for the warn lines about refused connections, failed TLS handshakes, abusive sessions
// and the CA's denials of requesters that proved nothing.

/** A line let through: how many for the same key were left out since the last one, and over how long. */
export interface LetThrough {
  readonly suppressed: number;
  readonly seconds: number;
  /** Lines of any key held back by the budget for all keys since the last line let through. */
  readonly overBudget: number;
  /** That budget: lines per window, and the window in seconds. */
  readonly budget: { readonly lines: number; readonly seconds: number };
}

interface Seen {
  /** When a line for the key was last let through. */
  at: number;
  /** Lines of the key left out within its window since `since` (the last line let through). */
  suppressed: number;
  since: number;
}

export class LogPerKey {
  private readonly last = new Map<string, Seen>();
  private windowStart = -Infinity;
  private linesInWindow = 0;
  /** Lines the budget held back, not said yet. */
  private overBudget = 0;

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxKeys = 4096,
    private readonly maxLinesPerWindow = 100,
  ) {}

  /** Whether a line for `key` is logged now: undefined when not (it is counted instead). */
  take(key: string): LetThrough | undefined {
    // the process's running time: a wall clock stepped back held every window shut for the step
    const now = performance.now();
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
      this.overBudget += 1;
      return undefined;
    }
    this.linesInWindow += 1;
    this.remember(key, { at: now, suppressed: 0, since: now });
    const overBudget = this.overBudget;
    this.overBudget = 0;
    const budget = { lines: this.maxLinesPerWindow, seconds: this.windowMs / 1000 };
    return { suppressed: seen?.suppressed ?? 0, seconds: Math.round((now - (seen?.since ?? now)) / 1000), overBudget, budget };
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
  const parts: string[] = [];
  if (through.suppressed > 0) parts.push(`${through.suppressed} more ${what} in the last ${through.seconds} s`);
  if (through.overBudget > 0) parts.push(`${through.overBudget} more like it over the limit of ${through.budget.lines} lines per ${through.budget.seconds} s`);
  return parts.length > 0 ? ` (and ${parts.join(', and ')}, not logged)` : '';
}

/** The counts of a line let through as log fields: none when nothing was left out. */
export function leftOutFields(through: LetThrough): { suppressed?: number; overBudget?: number } {
  return { ...(through.suppressed > 0 ? { suppressed: through.suppressed } : {}), ...(through.overBudget > 0 ? { overBudget: through.overBudget } : {}) };
}

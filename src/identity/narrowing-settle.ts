// identity.files: a new set whose bundle leaves out a root the bundle in use holds is taken only
// once the same bytes have stood for NARROWING_SETTLE_MS. A writer that rewrites the bundle in
// place (`cat root1 > bundle.pem; cat root2 >> bundle.pem`) and pauses between the roots for
// longer than the watch's 200 ms debounce left a whole, valid bundle one root short on disk:
// it was taken, the callers under the other root had their open connections cut, and the
// second write put the root back a moment later (the identity review). Trust that widens, or
// keeps its roots, is taken at once: only narrowing waits, and a bundle that really drops a
// root (a root rotation's retire step) takes effect two seconds later.

/** How long a narrowing set's bytes must stay as they are before they are taken. */
export const NARROWING_SETTLE_MS = 2_000;

export class NarrowingSettle {
  private pending: { readonly seen: string; readonly since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** `readAgain`: reads the files again (the watcher's reload), once the wait is over. */
  constructor(private readonly readAgain: () => void, private readonly settleMs = NARROWING_SETTLE_MS) {}

  /**
   * Whether a narrowing set, its bytes' fingerprint `seen`, may be taken now: true once the same
   * bytes were seen `settleMs` ago. Otherwise the files are read again when they may be, and
   * the caller must read these bytes then, not skip them as seen.
   */
  settled(seen: string): boolean {
    const now = performance.now();
    if (this.pending?.seen === seen && now - this.pending.since >= this.settleMs) {
      this.clear();
      return true;
    }
    if (this.pending?.seen !== seen) {
      this.pending = { seen, since: now };
      clearTimeout(this.timer);
      // a little past the wait: a timer may fire a millisecond before its delay has passed
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.readAgain();
      }, this.settleMs + 10);
      this.timer.unref();
    }
    return false;
  }

  /** The files were read and hold `seen`: a wait for other bytes ends (they changed back, or on); true when one did. */
  read(seen: string): boolean {
    if (this.pending === undefined || this.pending.seen === seen) return false;
    this.clear();
    return true;
  }

  /** Nothing narrowing is waited for (a set that keeps its roots was taken, or the watch closed). */
  clear(): void {
    this.pending = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Whether a narrowing set is being waited for (for the log line said once per set). */
  waiting(seen: string): boolean {
    return this.pending?.seen === seen;
  }
}

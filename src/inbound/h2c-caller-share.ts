// How many of the h2c app's stream slots each caller holds, and the most one caller may hold:
// all the slots the sessions allow (or could, while more sessions may open) but an eighth, as
// the HTTP/1.1 pools hold a caller to 7/8 of the connections (app-caller-share.ts): a
// compromised caller keeping uploads trickling held every slot (two HTTP/2 connections of 250
// streams cover 4 sessions of 100), and every other caller's request waited until its deadline.
// Under 8 slots there is no reserve. The slots are the pool's to count (h2c-pool.ts: capacity).

export class H2cCallerShare {
  /** Slots each caller holds now (callers holding none are not kept). */
  private readonly held = new Map<string, number>();

  /** Whether `caller` may take one more of `capacity` slots. */
  mayTake(caller: string, capacity: number): boolean {
    return (this.held.get(caller) ?? 0) < Math.max(1, capacity - Math.floor(capacity / 8));
  }

  take(caller: string): void {
    this.held.set(caller, (this.held.get(caller) ?? 0) + 1);
  }

  release(caller: string): void {
    const count = (this.held.get(caller) ?? 1) - 1;
    if (count > 0) this.held.set(caller, count);
    else this.held.delete(caller);
  }
}

// How many of the HTTP/1.1 app's connections each caller holds (the own pool's connections,
// or the requests in undici's pool, one connection each), and the most one caller may hold:
// all of them but an eighth (224 of the default 256), so that one caller can never take
// them all. Taking turns (src/http/fair-queue.ts) only orders the waiting; a request keeps its
// connection until its exchange ends, and an upload kept trickling (a byte now and then, within
// idleTimeout; the request timeout starts at the body's end) keeps it for as long as the caller
// likes: a compromised caller with enough such uploads (two HTTP/2 connections of 250 streams)
// held every connection, and every other caller's request waited until its deadline (504).
// With the reserve the others always have connections to take turns on. What it costs: a
// single caller using the whole pool at once gets 7/8 of it, the rest of its requests wait
// their turn. Pools under 8 connections keep no reserve (an eighth of them is none).

export class CallerShare {
  /** The connections each caller holds now (callers holding none are not kept). */
  private readonly held = new Map<string, number>();
  /** What holds a connection (the own pool's connection, undici's request slot) -> its caller. */
  private readonly holder = new Map<object, string>();
  readonly maxPerCaller: number;

  constructor(maxConnections: number) {
    this.maxPerCaller = Math.max(1, maxConnections - Math.floor(maxConnections / 8));
  }

  /** Connections held now, by every caller together. */
  get holding(): number {
    return this.holder.size;
  }

  /** Whether `caller` may take one more connection. */
  readonly mayTake = (caller: string): boolean => (this.held.get(caller) ?? 0) < this.maxPerCaller;

  /** `connection` now carries a request of `caller`. */
  take(connection: object, caller: string): void {
    this.holder.set(connection, caller);
    this.held.set(caller, (this.held.get(caller) ?? 0) + 1);
  }

  /** `connection` finished its request, or is gone (a no-op for one that carried none). */
  release(connection: object): void {
    const caller = this.holder.get(connection);
    if (caller === undefined) return;
    this.holder.delete(connection);
    const count = (this.held.get(caller) ?? 1) - 1;
    if (count > 0) this.held.set(caller, count);
    else this.held.delete(caller);
  }
}

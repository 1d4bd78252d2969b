// A queue of waiting requests that serves their callers in turn, not in arrival order: one
// queue per key (the caller's SPIFFE ID), and the keys take turns (round robin). With one
// queue for all, a caller that sends a thousand requests while the app is slow puts every
// other caller's request behind its thousand; here the other caller waits for one of them.
// Used where requests wait for the app: the HTTP/1.1 pools' connections (inbound/app-pool.ts,
// app-undici-pool.ts) and the h2c pool's stream slots (inbound/h2c-waiters.ts), each bounded
// (addWithin).
//
// Every operation is O(1) but evictNewestOfLargest (it walks the keys and the largest key's
// items, and runs only when a bounded queue is full). A Map keeps its keys in insertion order: the key whose turn it is comes first, and a
// key served with more left is moved to the back by deleting and re-adding it.

export class FairQueue<T> {
  /** Per key, its waiting items in arrival order; the keys in turn order. */
  private readonly byKey = new Map<string, Set<T>>();
  private readonly keyOf = new Map<T, string>();

  get size(): number {
    return this.keyOf.size;
  }

  add(key: string, item: T): void {
    let items = this.byKey.get(key);
    if (items === undefined) this.byKey.set(key, (items = new Set()));
    items.add(item);
    this.keyOf.set(item, key);
  }

  /** Takes `item` out (its request was cancelled while it waited); false if it was not waiting. */
  delete(item: T): boolean {
    const key = this.keyOf.get(item);
    if (key === undefined) return false;
    this.keyOf.delete(item);
    const items = this.byKey.get(key) as Set<T>;
    items.delete(item);
    if (items.size === 0) this.byKey.delete(key);
    return true;
  }

  /** The oldest item of the key whose turn it is; that key goes to the back of the turns. */
  shift(): T | undefined {
    for (const [key, items] of this.byKey) return this.takeFirst(key, items);
    return undefined;
  }

  /**
   * As shift(), but only among the keys `eligible` lets through (a caller already holding its
   * share of the app's connections waits on): the oldest item of the first such key in turn;
   * the keys passed over keep their places. O(keys passed over).
   */
  shiftWhere(eligible: (key: string) => boolean): T | undefined {
    for (const [key, items] of this.byKey) if (eligible(key)) return this.takeFirst(key, items);
    return undefined;
  }

  /** Takes `key`'s oldest item; the key goes to the back of the turns (or leaves them, emptied). */
  private takeFirst(key: string, items: Set<T>): T {
    const first = items.values().next().value as T;
    items.delete(first);
    this.keyOf.delete(first);
    this.byKey.delete(key);
    if (items.size > 0) this.byKey.set(key, items);
    return first;
  }

  /**
   * For a bounded queue that is full when `key` wants in: takes out and returns the newest item
   * of the key with the most waiting, if that key has more waiting than `key` would with one
   * more; else undefined (the newcomer is the one to refuse). So a caller filling the queue
   * loses its own latest requests, not the places of callers with fewer waiting.
   */
  evictNewestOfLargest(key: string): T | undefined {
    let largest: Set<T> | undefined;
    for (const items of this.byKey.values()) if (largest === undefined || items.size > largest.size) largest = items;
    const own = this.byKey.get(key)?.size ?? 0;
    if (largest === undefined || largest.size <= own + 1) return undefined;
    let newest: T | undefined;
    for (const item of largest) newest = item;
    this.delete(newest as T);
    return newest;
  }

  /**
   * Adds `item` under `key` unless `max` items wait already; then the key with the most waiting
   * gives up its newest, if it has more than `key` would (evictNewestOfLargest). Returns the item
   * that gets no place (`item` itself, or the one it crowded out), else undefined.
   */
  addWithin(max: number, key: string, item: T): T | undefined {
    let refused: T | undefined = undefined;
    if (this.size >= max) {
      refused = this.evictNewestOfLargest(key);
      if (refused === undefined) return item;
    }
    this.add(key, item);
    return refused;
  }

  /** Empties the queue; its items in turn order. */
  drain(): T[] {
    const all: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) all.push(item);
    return all;
  }
}

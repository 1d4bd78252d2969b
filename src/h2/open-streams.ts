// A connection's open streams by id: a Map that is swapped for a fresh copy now and then, so a
// long-lived connection's churn of streams (one set and one delete per stream) cannot turn
// V8's young-generation collections into a promotion storm.
//
// Why: a JS Map keeps its entries in a hash table that V8 replaces by a new one as entries come
// and go (every few dozen streams at 50 in flight). The old table keeps pointing at the entries
// it held, and when the current table is in the old generation the new one is allocated there
// too (V8's OrderedHashTable::Rehash). So once one full GC has moved the table to the old
// generation (any mark-compact while the connection is open does), every later table is old,
// and each discarded one, dead but only reclaimed by the next mark-compact, keeps the streams
// that were open when it was replaced, and all they reach, alive through the scavenges: every
// request's objects were promoted, a mark-compact every ~0.7 s at a saturating load, peak RSS
// 77 -> 115 MB and CPU per request +25 %, until the load stopped. A copy made in the young
// generation starts over young; copying the entries every max(RENEW_AFTER, 2 x open) deletes
// costs at most half an entry copy per stream, and the storm lasts a few milliseconds after a
// mark-compact instead of until the connection goes.

/** Deletes between two fresh copies (at least; twice the open streams on a busier connection). */
export const RENEW_AFTER = 128;

export class OpenStreams<T> {
  private map = new Map<number, T>();
  private deletes = 0;

  get size(): number {
    return this.map.size;
  }

  get(id: number): T | undefined {
    return this.map.get(id);
  }

  set(id: number, stream: T): void {
    this.map.set(id, stream);
  }

  delete(id: number): void {
    if (!this.map.delete(id)) return;
    if (++this.deletes < Math.max(RENEW_AFTER, 2 * this.map.size)) return;
    this.deletes = 0;
    // entry by entry into a new Map (allocated young), not a clone of the old table
    const fresh = new Map<number, T>();
    for (const [key, value] of this.map) fresh.set(key, value);
    this.map = fresh;
  }

  /** The open streams, in the order they opened (a loop that may close streams iterates a copy). */
  values(): IterableIterator<T> {
    return this.map.values();
  }

  clear(): void {
    this.map = new Map();
    this.deletes = 0;
  }
}

// The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of (name, value) entries, newest first,
// bounded by a size in octets where each entry counts name + value + 32 (§4.1). Both the decoder
// and the encoder keep one; the encoder also listens to evictions to keep its lookup maps exact.
//
// Stored as a ring buffer of two parallel string arrays, so adding an entry allocates nothing
// once the ring has grown to the table's working size. Strings are latin1 (one char per octet),
// so `string.length` is the octet length the size accounting needs.

/** Per-entry overhead of RFC 7541 §4.1. */
export const ENTRY_OVERHEAD = 32;

export type EvictionListener = (name: string, value: string, seq: number) => void;

export class DynamicTable {
  private names: string[];
  private values: string[];
  private mask: number;
  /** Ring slot of the newest entry. */
  private head = 0;
  private count = 0;
  private bytes = 0;
  private max: number;
  /** Entries ever inserted; entry number `seq` (1-based) is at dynamic index `inserted - seq + 1`. */
  private inserted = 0;

  constructor(
    maxSize: number,
    private readonly onEvict: EvictionListener | null = null,
  ) {
    this.max = maxSize;
    // Start small; the ring doubles as needed, up to maxSize / 32 entries at most.
    const capacity = 16;
    this.names = new Array<string>(capacity).fill('');
    this.values = new Array<string>(capacity).fill('');
    this.mask = capacity - 1;
  }

  /** Number of entries. */
  get length(): number {
    return this.count;
  }

  /** Current size in octets (§4.1). */
  get size(): number {
    return this.bytes;
  }

  /** Current maximum size in octets (the last dynamic table size update). */
  get maxSize(): number {
    return this.max;
  }

  /** Sequence number the next inserted entry will get. */
  get nextSeq(): number {
    return this.inserted + 1;
  }

  /** Dynamic index (1 = newest) of the entry inserted as number `seq`, or 0 if it was evicted. */
  indexOfSeq(seq: number): number {
    const index = this.inserted - seq + 1;
    return index >= 1 && index <= this.count ? index : 0;
  }

  /** Name at dynamic index `index` (1-based, newest first); the caller checks the range. */
  nameAt(index: number): string {
    return this.names[(this.head - index + 1) & this.mask]!;
  }

  /** Value at dynamic index `index` (1-based, newest first); the caller checks the range. */
  valueAt(index: number): string {
    return this.values[(this.head - index + 1) & this.mask]!;
  }

  /**
   * Inserts an entry, evicting from the oldest end to make room. An entry larger than the whole
   * table empties it and is not inserted (§4.4): not an error.
   */
  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.max) {
      this.addOversized();
      return;
    }
    // Evict before counting the insertion: eviction reports sequence numbers relative to it.
    this.evictDownTo(this.max - size);
    this.inserted++;
    if (this.count === this.mask + 1) this.grow();
    this.head = (this.head + 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.bytes += size;
  }

  /** Records an insertion of an entry too large for the table without needing its strings. */
  addOversized(): void {
    this.evictDownTo(0);
    this.inserted++;
  }

  /** Applies a dynamic table size update (§6.3): evicts until the table fits. */
  setMaxSize(maxSize: number): void {
    this.max = maxSize;
    this.evictDownTo(maxSize);
  }

  private evictDownTo(limit: number): void {
    while (this.bytes > limit) {
      // The oldest entry sits count - 1 slots behind the head.
      const slot = (this.head - this.count + 1) & this.mask;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      this.bytes -= name.length + value.length + ENTRY_OVERHEAD;
      if (this.onEvict !== null) this.onEvict(name, value, this.inserted - this.count + 1);
      // Drop the references so evicted strings can be collected.
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const names = new Array<string>(capacity).fill('');
    const values = new Array<string>(capacity).fill('');
    // Copy oldest to newest into slots 0..count-1, so the head lands at count - 1.
    for (let i = this.count; i >= 1; i--) {
      names[this.count - i] = this.nameAt(i);
      values[this.count - i] = this.valueAt(i);
    }
    this.names = names;
    this.values = values;
    this.mask = capacity - 1;
    this.head = this.count - 1;
  }
}

// A request body kept for a replay (the outbound's retries, the inbound's resend of a stream an
// h2c app refused), copied as it goes by into one buffer of its own that grows by doubling up
// to the limit. Each chunk kept as it came was a view of the socket read that carried it: a body
// sent in 1-byte chunks, 64,000 of them under a 64 KiB limit, held 15-35 MB a request (the
// views, their objects and the reads they kept alive) where the limit promised 64 KiB (a
// review of memory bounds: 200 such uploads took a sidecar past 2 GB).

const EMPTY = Buffer.alloc(0);

/** The smallest store made: most kept bodies are small, one allocation holds them. */
const FIRST_STORE_BYTES = 4096;

export class ReplayCopy {
  private store: Buffer = EMPTY;
  private used = 0;

  constructor(private readonly limit: number) {}

  /** Appends a copy of `chunk`; false (nothing kept) when the body would pass the limit. */
  add(chunk: Buffer): boolean {
    const needed = this.used + chunk.length;
    if (needed > this.limit) return false;
    if (needed > this.store.length) {
      const next = Buffer.allocUnsafe(Math.min(this.limit, Math.max(needed, FIRST_STORE_BYTES, this.store.length * 2)));
      this.store.copy(next, 0, 0, this.used);
      this.store = next;
    }
    chunk.copy(this.store, this.used);
    this.used = needed;
    return true;
  }

  /** Bytes kept so far. */
  get size(): number {
    return this.used;
  }

  /** The body kept so far, as one buffer of its own (a copy: later adds do not change it). */
  bytes(): Buffer {
    return Buffer.from(this.store.subarray(0, this.used));
  }
}

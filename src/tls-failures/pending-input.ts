// The bytes a handshake gate (handshake-gate.ts) has read and not yet examined. Reads are kept as
// they come and joined only once they complete what the gate waits for (a record's header, or
// the whole record): joined on every read, a record trickled in 1-byte reads was copied once per
// byte (64 KiB held so cost a dial 0.7 s of CPU), and any peer chooses its reads' sizes.

const EMPTY = Buffer.alloc(0);

export class PendingInput {
  /** What has been joined: the records to examine, from the start of the next one. */
  bytes: Buffer = EMPTY;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Bytes the next record needs before it can be examined (its header, then its whole length). */
  private need = 5;

  /** Everything read and not yet taken, joined or not. */
  get length(): number {
    return this.bytes.length + this.partsBytes;
  }

  /** Keeps a read; true once there is enough for the record waited for (join() then). */
  add(chunk: Buffer): boolean {
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    return this.length >= this.need;
  }

  /** Joins what was kept into `bytes`. */
  join(): Buffer {
    if (this.parts.length > 0) {
      this.bytes = this.bytes.length === 0 && this.parts.length === 1 ? this.parts[0]! : Buffer.concat([this.bytes, ...this.parts]);
      this.parts = [];
      this.partsBytes = 0;
    }
    return this.bytes;
  }

  /** The next record is `total` bytes long and not all here: nothing is joined before it is. */
  waitFor(total: number): void {
    this.need = total;
  }

  /** Takes the first `n` joined bytes (a whole record); the next record needs its header first. */
  take(n: number): Buffer {
    const taken = this.bytes.subarray(0, n);
    this.bytes = this.bytes.subarray(n);
    this.need = 5;
    return taken;
  }

  /** Takes everything, joined. */
  takeAll(): Buffer {
    const all = this.join();
    this.bytes = EMPTY;
    return all;
  }

  clear(): void {
    this.bytes = EMPTY;
    this.parts = [];
    this.partsBytes = 0;
  }
}

// HPACK decoder (RFC 7541 §3, §6): turns one complete header block into a flat
// [name, value, ...] list, keeping the dynamic table in step with the peer's encoder.
//
// Hardening, because the block comes from the network:
// - every length and index is checked against the bytes actually present before anything is
//   allocated, integers above 2^31-1 or with more than five continuation bytes are refused;
// - the header list limit (RFC 9113 §6.5.2: name + value + 32 per field) is enforced while
//   decoding: once it is exceeded, later fields are still parsed and validated (and still update
//   the dynamic table, whose strings are bounded by the table size), but no string is built for
//   the list. So an "HPACK bomb" — a tiny block repeating a big dynamic entry — costs a counter,
//   not memory, and HEADER_LIST_TOO_LARGE leaves the table consistent: the connection may answer
//   with a stream error (431 / RST_STREAM) and keep going.
// - anything malformed is a COMPRESSION_ERROR, which is a connection error.
//
// Speed: one pass with a cursor, no per-byte allocation; strings come from Buffer#latin1Slice
// and Huffman strings are decoded into a reused scratch buffer first.

import { Buffer } from 'node:buffer';
import { DynamicTable, ENTRY_OVERHEAD } from './dynamic-table.js';
import { HpackError, compressionError } from './errors.js';
import { huffmanDecode, huffmanMaxDecodedLength } from './huffman.js';
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './static-table.js';

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE we advertise (and the peer has acknowledged); default 4096. */
  maxTableSize: number;
  /** Limit of the decoded list in octets, name + value + 32 per field; default 16384. */
  maxHeaderListSize: number;
}

/** The protocol's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
export const DEFAULT_MAX_HEADER_LIST_SIZE = 16384;

/** Largest integer we accept in any HPACK field (lengths, indices, sizes). */
const MAX_INTEGER = 0x7fffffff;
/** 5 continuation bytes carry 35 bits, more than enough for 2^31-1; a 6th is an attack. */
const MAX_INTEGER_SHIFT = 28;

// Buffer#latin1Slice is public at runtime (Buffer#toString uses it) but absent from @types/node;
// calling it directly skips toString's argument juggling on the hottest path.
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

const EMPTY = Buffer.alloc(0) as Latin1Buffer;

function checkSize(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`HPACK decoder: ${what} must be an integer in 0..2^32-1, got ${value}`);
  }
  return value;
}

export class HpackDecoder {
  private readonly table: DynamicTable;
  /** What we advertise: the peer's size updates may not exceed it. */
  private allowedTableSize: number;
  /** >= 0 when we lowered the limit: the next block must open with an update at most this big. */
  private requiredUpdate = -1;
  private readonly maxListSize: number;
  private scratch: Buffer = Buffer.allocUnsafeSlow(256);

  // Cursor over the block being decoded (fields, so helpers need no tuples or closures).
  private src: Latin1Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  /** Decoded octet length of the last string read, set even when the string was not built. */
  private lastLength = 0;

  constructor(options: Partial<HpackDecoderOptions> = {}) {
    this.allowedTableSize = checkSize('maxTableSize', options.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE);
    this.maxListSize = checkSize('maxHeaderListSize', options.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE);
    this.table = new DynamicTable(this.allowedTableSize);
  }

  /** Current dynamic table size in octets (for tests and metrics). */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** Current dynamic table maximum, as last set by the peer's size updates. */
  get dynamicTableMaxSize(): number {
    return this.table.maxSize;
  }

  /** Dynamic table entries, newest first (for tests and debugging; allocates). */
  dynamicTableEntries(): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    for (let i = 1; i <= this.table.length; i++) entries.push([this.table.nameAt(i), this.table.valueAt(i)]);
    return entries;
  }

  /**
   * Our advertised SETTINGS_HEADER_TABLE_SIZE changed and the peer acknowledged it. Lowering it
   * below the table's current maximum shrinks the table now and obliges the peer to open its next
   * block with a size update no larger than the smallest value set since its last block (§4.2).
   */
  setMaxTableSize(size: number): void {
    this.allowedTableSize = checkSize('maxTableSize', size);
    if (size < this.table.maxSize) {
      this.table.setMaxSize(size);
      this.requiredUpdate = this.requiredUpdate < 0 ? size : Math.min(this.requiredUpdate, size);
    }
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION payloads concatenated).
   * Returns [name0, value0, name1, value1, ...], strings as latin1.
   * Throws HpackError: COMPRESSION_ERROR for malformed input (a connection error; the decoder is
   * unusable afterwards), HEADER_LIST_TOO_LARGE after the whole block was processed (the table
   * is consistent: a stream error is enough).
   */
  decode(block: Uint8Array): string[] {
    this.src = (Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength)) as Latin1Buffer;
    this.pos = 0;
    this.end = block.byteLength;
    try {
      return this.decodeBlock();
    } finally {
      this.src = EMPTY; // do not keep the caller's buffer alive
    }
  }

  private decodeBlock(): string[] {
    const src = this.src;
    const table = this.table;
    this.readTableSizeUpdates();

    const out: string[] = [];
    const maxList = this.maxListSize;
    let listSize = 0;
    while (this.pos < this.end) {
      const first = src[this.pos]!;

      if (first & 0x80) {
        // Indexed header field (§6.1). Costs no allocation, so a bomb only moves the counter.
        const index = this.readInteger(7);
        let name: string;
        let value: string;
        if (index <= STATIC_TABLE_LENGTH) {
          if (index === 0) compressionError('indexed header field with index 0');
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const dynamic = index - STATIC_TABLE_LENGTH;
          if (dynamic > table.length) compressionError(`header index ${index} is beyond the tables`);
          name = table.nameAt(dynamic);
          value = table.valueAt(dynamic);
        }
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize <= maxList) out.push(name, value);
        continue;
      }

      // Literal header field (§6.2): with incremental indexing 01xxxxxx (6-bit name index),
      // without indexing 0000xxxx or never indexed 0001xxxx (4-bit name index).
      let indexing: boolean;
      if (first & 0x40) indexing = true;
      else if (first & 0x20) compressionError('dynamic table size update after the first header field');
      else indexing = false;
      const nameIndex = this.readInteger(indexing ? 6 : 4);

      // How long the strings may be and still be needed: for the list, what is left of it; for
      // the table, an entry that fits it. Longer strings are parsed but never built.
      const listRoom = maxList - listSize - ENTRY_OVERHEAD;
      const tableRoom = indexing ? table.maxSize - ENTRY_OVERHEAD : -1;
      let room = listRoom > tableRoom ? listRoom : tableRoom;

      let name: string | null;
      let nameLength: number;
      if (nameIndex === 0) {
        name = this.readString(room);
        nameLength = this.lastLength;
      } else {
        name = this.indexedName(nameIndex);
        nameLength = name.length;
      }
      room -= nameLength;
      const value = this.readString(room);
      const size = nameLength + this.lastLength + ENTRY_OVERHEAD;

      if (indexing) {
        // Both strings exist whenever the entry fits the table (each was within tableRoom).
        if (size > table.maxSize) table.addOversized();
        else table.add(name!, value!);
      }
      listSize += size;
      if (listSize <= maxList) out.push(name!, value!);
    }

    if (listSize > maxList) {
      throw new HpackError('HEADER_LIST_TOO_LARGE', `header list of ${listSize} octets exceeds the limit of ${maxList}`);
    }
    return out;
  }

  /** Dynamic table size updates (§6.3), only allowed before the first field of a block (§4.2). */
  private readTableSizeUpdates(): void {
    const src = this.src;
    let smallest = -1;
    while (this.pos < this.end && (src[this.pos]! & 0xe0) === 0x20) {
      const size = this.readInteger(5);
      if (size > this.allowedTableSize) {
        compressionError(`dynamic table size update to ${size} exceeds the advertised ${this.allowedTableSize}`);
      }
      if (smallest < 0 || size < smallest) smallest = size;
      this.table.setMaxSize(size);
    }
    if (this.requiredUpdate >= 0) {
      if (smallest < 0) compressionError('missing dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered');
      if (smallest > this.requiredUpdate) {
        compressionError(`dynamic table size update to ${smallest} exceeds the lowered limit ${this.requiredUpdate}`);
      }
      this.requiredUpdate = -1;
    }
  }

  private indexedName(index: number): string {
    if (index <= STATIC_TABLE_LENGTH) return STATIC_NAMES[index]!;
    const dynamic = index - STATIC_TABLE_LENGTH;
    if (dynamic > this.table.length) compressionError(`header name index ${index} is beyond the tables`);
    return this.table.nameAt(dynamic);
  }

  /**
   * Integer with an N-bit prefix (§5.1) at the cursor, which must be inside the block. Refuses
   * values above 2^31-1 and encodings longer than five continuation bytes, so zero-padded
   * continuations cannot make us loop.
   */
  private readInteger(prefixBits: number): number {
    const src = this.src;
    const mask = (1 << prefixBits) - 1;
    let pos = this.pos;
    let value = src[pos++]! & mask;
    if (value === mask) {
      let shift = 0;
      for (;;) {
        if (pos >= this.end) compressionError('integer truncated at the end of the block');
        const byte = src[pos++]!;
        value += (byte & 0x7f) * 2 ** shift; // arithmetic, not <<, which would wrap at 32 bits
        if (value > MAX_INTEGER) compressionError('integer exceeds 2^31-1');
        if ((byte & 0x80) === 0) break;
        shift += 7;
        if (shift > MAX_INTEGER_SHIFT) compressionError('integer has too many continuation bytes');
      }
    }
    this.pos = pos;
    return value;
  }

  /**
   * String literal (§5.2) at the cursor. Returns it, or null when its decoded length exceeds
   * `room` (the string is still validated and skipped, never built). Sets `lastLength` to the
   * exact decoded length either way.
   */
  private readString(room: number): string | null {
    if (this.pos >= this.end) compressionError('string literal missing at the end of the block');
    const huffman = (this.src[this.pos]! & 0x80) !== 0;
    const length = this.readInteger(7);
    const start = this.pos;
    // Checked before anything else: a length claiming 2^31 octets costs nothing.
    if (length > this.end - start) compressionError(`string literal of ${length} octets overruns the block`);
    this.pos = start + length;

    if (!huffman) {
      this.lastLength = length;
      return length <= room ? this.src.latin1Slice(start, start + length) : null;
    }
    const limit = room > 0 ? room : 0;
    const needed = Math.min(limit, huffmanMaxDecodedLength(length));
    if (needed > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(Math.max(needed, this.scratch.length * 2));
    const decoded = huffmanDecode(this.src, start, start + length, this.scratch, limit);
    if (decoded < 0) compressionError('invalid Huffman string (EOS, or padding that is not up to 7 one bits)');
    this.lastLength = decoded;
    return decoded <= room ? (this.scratch as Latin1Buffer).latin1Slice(0, decoded) : null;
  }
}

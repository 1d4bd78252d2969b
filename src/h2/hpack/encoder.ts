// HPACK encoder (RFC 7541 §6): turns a flat [name, value, ...] list into one header block.
//
// Per field it picks the cheapest safe representation: a full match in the static or dynamic
// table is one index; otherwise a literal whose name is indexed when possible, added to the
// dynamic table when the field is likely to repeat, and Huffman-coded when that is shorter.
// Lookups go through one Map per encoder: name → everything known about that name (static
// indices, the newest dynamic entry with that name, value → newest dynamic entry with that field,
// and the indexing policy), so a field costs one or two Map lookups. Dynamic entries are
// remembered by insertion number, which stays valid as newer entries shift the indices.
//
// Indexing policy (documented in index.ts):
// - never indexed (§6.2.3, §7.1.3), so no intermediary may index them either: authorization,
//   proxy-authorization, set-cookie, cookie values shorter than 20 octets (low entropy, guessable
//   by CRIME-style probing; the nghttp2/Firefox rule), plus `sensitiveHeaders` from the options;
// - literal without indexing (would only churn the table): values that change on every message
//   (content-length, date-like validators, request and trace ids), :path with a query string,
//   and any field bigger than 3/4 of the table;
// - everything else is indexed, including x-forwarded-client-cert: it carries no secret (the
//   identity the peer proved over mTLS) and repeats on every request of a connection, so indexing
//   it saves the most.

import { Buffer } from 'node:buffer';
import { DynamicTable } from './dynamic-table.js';
import { DEFAULT_HEADER_TABLE_SIZE } from './decoder.js';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { STATIC_FIELD_INDEX, STATIC_NAME_INDEX, STATIC_TABLE_LENGTH } from './static-table.js';

export interface HpackEncoderOptions {
  /** Upper bound on the dynamic table we keep, whatever the peer allows; default 4096. */
  maxTableSize?: number;
  /** Huffman-code strings when that is shorter; default true. */
  huffman?: boolean;
  /** Extra header names (lower case) to send as never-indexed literals. */
  sensitiveHeaders?: Iterable<string>;
}

const enum Policy {
  Index = 0,
  NoIndex = 1,
  Never = 2,
  /** Never indexed when the value is shorter than 20 octets, indexed otherwise. */
  NeverIfShort = 3,
  /** :path: indexed unless it carries a query string. */
  Path = 4,
}

export const NEVER_INDEXED_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'set-cookie'];
export const NOT_INDEXED_HEADERS: readonly string[] = [
  'content-length', 'age', 'etag', 'if-modified-since', 'if-none-match', 'last-modified', 'location',
  'x-request-id', 'traceparent', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'b3',
  'x-amzn-trace-id', 'x-cloud-trace-context', 'grpc-timeout',
];

/** Everything the encoder knows about one header name. */
interface NameInfo {
  policy: Policy;
  /** Lowest static index with this name, or 0. */
  staticIndex: number;
  /** value → static index for this name, if any static entry has this name. */
  staticValues: ReadonlyMap<string, number> | undefined;
  /** Insertion number of the newest dynamic entry with this name, or 0. */
  dynamicName: number;
  /** value → insertion number of the newest dynamic entry with exactly this field. */
  dynamicValues: Map<string, number> | null;
  /** Permanent entries (static names, configured policies) are never dropped from the map. */
  permanent: boolean;
}

/** Largest encoded integer: 1 prefix byte + 5 continuation bytes for 2^31-1. */
const MAX_INTEGER_BYTES = 6;

export class HpackEncoder {
  private readonly table: DynamicTable;
  private readonly names = new Map<string, NameInfo>();
  private readonly huffman: boolean;
  private readonly tableCap: number;
  /** Pending size update (§6.3): smallest and last effective size since the previous block. */
  private pendingUpdate = false;
  private pendingMin = 0;
  private pendingFinal = 0;
  private buf: Buffer = Buffer.allocUnsafeSlow(1024);

  constructor(options: HpackEncoderOptions = {}) {
    const cap = options.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    if (!Number.isInteger(cap) || cap < 0 || cap > 0xffffffff) {
      throw new RangeError(`HPACK encoder: maxTableSize must be an integer in 0..2^32-1, got ${cap}`);
    }
    this.tableCap = cap;
    this.huffman = options.huffman ?? true;
    this.table = new DynamicTable(Math.min(cap, DEFAULT_HEADER_TABLE_SIZE), (name, value, seq) => this.evicted(name, value, seq));
    // The peer's decoder starts at 4096; if we keep less, say so in the first block (otherwise
    // its table would hold entries ours has evicted).
    if (cap < DEFAULT_HEADER_TABLE_SIZE) {
      this.pendingUpdate = true;
      this.pendingMin = this.pendingFinal = cap;
    }

    for (const [name, index] of STATIC_NAME_INDEX) this.permanent(name, Policy.Index).staticIndex = index;
    for (const name of NOT_INDEXED_HEADERS) this.permanent(name, Policy.NoIndex);
    for (const name of NEVER_INDEXED_HEADERS) this.permanent(name, Policy.Never);
    this.permanent('cookie', Policy.NeverIfShort);
    this.permanent(':path', Policy.Path);
    for (const name of options.sensitiveHeaders ?? []) this.permanent(name.toLowerCase(), Policy.Never);
  }

  /** Current dynamic table size in octets (for tests and metrics). */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** Dynamic table entries, newest first (for tests and debugging; allocates). */
  dynamicTableEntries(): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    for (let i = 1; i <= this.table.length; i++) entries.push([this.table.nameAt(i), this.table.valueAt(i)]);
    return entries;
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE. We use min(that, our cap); a change is signalled at
   * the start of the next block — with the smallest size in between first, if it dipped (§4.2).
   */
  setPeerMaxTableSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
      throw new RangeError(`HPACK encoder: peer table size must be an integer in 0..2^32-1, got ${size}`);
    }
    this.queueUpdate(Math.min(size, this.tableCap));
  }

  /**
   * Encodes [name0, value0, ...] (names already lower case; strings latin1 — a character above
   * U+00FF is a TypeError) into a new Buffer holding one header block.
   */
  encode(headers: readonly string[]): Buffer {
    if (headers.length % 2 !== 0) throw new TypeError('HPACK encoder: headers must be [name, value, ...] pairs');
    let pos = 0;
    if (this.pendingUpdate) pos = this.writeTableSizeUpdates(pos);
    for (let i = 0; i < headers.length; i += 2) {
      pos = this.encodeField(headers[i]!, headers[i + 1]!, pos);
    }
    const block = Buffer.allocUnsafe(pos);
    this.buf.copy(block, 0, 0, pos);
    return block;
  }

  private encodeField(name: string, value: string, pos: number): number {
    this.ensure(pos + 3 * MAX_INTEGER_BYTES + name.length + value.length);
    const info = this.names.get(name);
    const policy = info === undefined ? Policy.Index : info.policy;
    const never = policy === Policy.Never || (policy === Policy.NeverIfShort && value.length < 20);

    let nameIndex = 0;
    if (info !== undefined) {
      if (!never) {
        // A full match is one index. Never-indexed fields skip this: they were never added, and
        // matching the static table's empty values gains nothing.
        const full = this.fieldIndex(info, value);
        if (full !== 0) return this.writeInteger(0x80, 7, full, pos);
      }
      nameIndex = info.staticIndex;
      if (nameIndex === 0 && info.dynamicName !== 0) nameIndex = STATIC_TABLE_LENGTH + this.table.indexOfSeq(info.dynamicName);
    }

    if (never) {
      pos = this.writeInteger(0x10, 4, nameIndex, pos);
    } else if (this.shouldIndex(policy, name, value)) {
      pos = this.writeInteger(0x40, 6, nameIndex, pos);
      const seq = this.table.nextSeq;
      this.table.add(name, value);
      // Look the name up again: the insertion's evictions may have dropped a learnt name's entry.
      const current = this.names.get(name) ?? this.transient(name);
      current.dynamicName = seq;
      (current.dynamicValues ??= new Map()).set(value, seq);
    } else {
      pos = this.writeInteger(0x00, 4, nameIndex, pos);
    }
    if (nameIndex === 0) pos = this.writeString(name, pos);
    return this.writeString(value, pos);
  }

  /** HPACK index of an entry with exactly this name and value, or 0. */
  private fieldIndex(info: NameInfo, value: string): number {
    if (info.staticValues !== undefined) {
      const index = info.staticValues.get(value);
      if (index !== undefined) return index;
    }
    if (info.dynamicValues !== null) {
      const seq = info.dynamicValues.get(value);
      if (seq !== undefined) return STATIC_TABLE_LENGTH + this.table.indexOfSeq(seq);
    }
    return 0;
  }

  private shouldIndex(policy: Policy, name: string, value: string): boolean {
    if (policy === Policy.NoIndex) return false;
    if (policy === Policy.Path && value.indexOf('?') >= 0) return false;
    // An entry this big would flush most of the table for one field.
    return (name.length + value.length + 32) * 4 <= this.table.maxSize * 3;
  }

  /** The dynamic table dropped an entry: forget it unless a newer entry took its place. */
  private evicted(name: string, value: string, seq: number): void {
    const info = this.names.get(name);
    if (info === undefined) return;
    if (info.dynamicName === seq) info.dynamicName = 0;
    if (info.dynamicValues !== null && info.dynamicValues.get(value) === seq) {
      info.dynamicValues.delete(value);
      if (info.dynamicValues.size === 0) info.dynamicValues = null;
    }
    // Names learnt from traffic leave with their last entry, so the map stays bounded.
    if (!info.permanent && info.dynamicName === 0 && info.dynamicValues === null) this.names.delete(name);
  }

  private permanent(name: string, policy: Policy): NameInfo {
    let info = this.names.get(name);
    if (info === undefined) {
      info = this.transient(name);
      info.permanent = true;
    }
    info.policy = policy;
    return info;
  }

  /** A map entry for a name, with its static facts filled in. */
  private transient(name: string): NameInfo {
    const info: NameInfo = {
      policy: Policy.Index,
      staticIndex: STATIC_NAME_INDEX.get(name) ?? 0,
      staticValues: STATIC_FIELD_INDEX.get(name),
      dynamicName: 0,
      dynamicValues: null,
      permanent: false,
    };
    this.names.set(name, info);
    return info;
  }

  private queueUpdate(size: number): void {
    if (!this.pendingUpdate) {
      // Nothing to say if the size does not actually change.
      if (size === this.table.maxSize) return;
      this.pendingUpdate = true;
      this.pendingMin = size;
    } else if (size < this.pendingMin) {
      this.pendingMin = size;
    }
    this.pendingFinal = size;
  }

  private writeTableSizeUpdates(pos: number): number {
    this.ensure(pos + 2 * MAX_INTEGER_BYTES);
    this.pendingUpdate = false;
    // The decoder may have shrunk its table to the smallest value in between: signal it first.
    if (this.pendingMin < this.pendingFinal) {
      pos = this.writeInteger(0x20, 5, this.pendingMin, pos);
      this.table.setMaxSize(this.pendingMin);
    }
    pos = this.writeInteger(0x20, 5, this.pendingFinal, pos);
    this.table.setMaxSize(this.pendingFinal);
    return pos;
  }

  /** Integer with an N-bit prefix (§5.1); `bits` are the representation's pattern bits. */
  private writeInteger(bits: number, prefixBits: number, value: number, pos: number): number {
    const buf = this.buf;
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      buf[pos++] = bits | value;
      return pos;
    }
    buf[pos++] = bits | mask;
    value -= mask;
    while (value >= 128) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[pos++] = value;
    return pos;
  }

  /** String literal (§5.2), Huffman-coded when that is strictly shorter. */
  private writeString(str: string, pos: number): number {
    const length = str.length;
    const huffmanLength = huffmanEncodedLength(str); // also rejects characters above U+00FF
    if (this.huffman && huffmanLength < length) {
      pos = this.writeInteger(0x80, 7, huffmanLength, pos);
      return huffmanEncode(str, this.buf, pos);
    }
    pos = this.writeInteger(0x00, 7, length, pos);
    const buf = this.buf;
    if (length > 32) return pos + buf.write(str, pos, length, 'latin1');
    for (let i = 0; i < length; i++) buf[pos + i] = str.charCodeAt(i);
    return pos + length;
  }

  private ensure(bytes: number): void {
    if (bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(bytes, this.buf.length * 2));
    this.buf.copy(next);
    this.buf = next;
  }
}

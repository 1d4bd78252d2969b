// HPACK encoder (RFC 7541 §6): turns a flat [name, value, ...] list into one header block.
//
// Per field it picks the cheapest safe representation: a full match in the static or dynamic
// table is one index; otherwise a literal whose name is indexed when possible, added to the
// dynamic table when policy.ts allows and the field is not too big, Huffman-coded when shorter.
//
// Lookups go through one Map per encoder: name → everything known about that name (static
// indices, the newest dynamic entry with that name, value → newest dynamic entry with that field,
// the policy, and the name's literal encoding once computed), so a field costs one or two Map
// lookups. Dynamic entries are remembered by insertion number, which stays valid while newer
// entries shift the indices; eviction removes them, so the maps never point at a dead entry and
// names learnt from traffic leave with their last entry (the map stays bounded).
//
// The integers and string literals themselves are written by encode-primitives.ts.

import { Buffer } from 'node:buffer';
import { DynamicTable } from './dynamic-table.js';
import { DEFAULT_HEADER_TABLE_SIZE } from './decoder.js';
import { writeInteger, writeString } from './encode-primitives.js';
import { NAME_TEMPLATES, type NameTemplate, type Policy, INDEX, isNeverIndexed, mayIndex, sensitiveTemplate } from './policy.js';
import { STATIC_TABLE_LENGTH } from './static-table.js';

export interface HpackEncoderOptions {
  /** Upper bound on the dynamic table we keep, whatever the peer allows; default 4096. */
  maxTableSize?: number;
  /** Huffman-code strings when that is shorter; default true. */
  huffman?: boolean;
  /** Extra header names to send as never-indexed literals (see policy.ts for the defaults). */
  sensitiveHeaders?: Iterable<string>;
}

/** Everything this encoder knows about one header name. */
interface NameInfo {
  readonly policy: Policy;
  readonly staticIndex: number;
  readonly staticValues: ReadonlyMap<string, number> | undefined;
  /** Insertion number of the newest dynamic entry with this name, or 0. */
  dynamicName: number;
  /** value → insertion number of the newest dynamic entry with exactly this field. */
  dynamicValues: Map<string, number> | null;
  /** The name as a string literal (length prefix included), cached after first use. */
  literal: Buffer | null;
  /** Names with a template stay; names learnt from traffic leave with their last entry. */
  readonly permanent: boolean;
}

/** Largest encoded integer: 1 prefix byte + 5 continuation bytes for 2^31-1. */
const MAX_INTEGER_BYTES = 6;
/** Worst-case Huffman growth is 30 bits per octet: under 4 octets out per octet in. */
const HUFFMAN_WORST = 4;

/** Template of a name learnt from traffic. */
const LEARNT: NameTemplate = { policy: INDEX, staticIndex: 0, staticValues: undefined };

function checkTableSize(what: string, size: number): number {
  if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
    throw new RangeError(`HPACK encoder: ${what} must be an integer in 0..2^32-1, got ${size}`);
  }
  return size;
}

// Connections share their list of sensitive names (one constant, or one config): its templates
// are made once per list, not per connection.
const templatesByList = new WeakMap<Iterable<string>, ReadonlyMap<string, NameTemplate>>();

function sensitiveTemplatesOf(names: Iterable<string>): ReadonlyMap<string, NameTemplate> | null {
  let templates = typeof names === 'object' ? templatesByList.get(names) : undefined;
  if (templates === undefined) {
    const made = new Map<string, NameTemplate>();
    for (const name of names) made.set(name.toLowerCase(), sensitiveTemplate(name.toLowerCase()));
    templates = made;
    if (typeof names === 'object') templatesByList.set(names, templates);
  }
  return templates.size > 0 ? templates : null;
}

export class HpackEncoder {
  private readonly table: DynamicTable;
  private readonly names = new Map<string, NameInfo>();
  private readonly extraTemplates: ReadonlyMap<string, NameTemplate> | null = null;
  private readonly huffman: boolean;
  private readonly tableCap: number;
  /** Pending size update (§6.3): smallest and last effective size since the previous block. */
  private pendingUpdate = false;
  private pendingMin = 0;
  private pendingFinal = 0;
  private buf: Buffer = Buffer.allocUnsafeSlow(1024);

  constructor(options: HpackEncoderOptions = {}) {
    const cap = checkTableSize('maxTableSize', options.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE);
    this.tableCap = cap;
    this.huffman = options.huffman ?? true;
    this.table = new DynamicTable(Math.min(cap, DEFAULT_HEADER_TABLE_SIZE), (name, value, seq) => this.evicted(name, value, seq));
    // The peer's decoder starts at 4096; if we keep less, say so in the first block (otherwise
    // its table would hold entries ours has evicted).
    if (cap < DEFAULT_HEADER_TABLE_SIZE) {
      this.pendingUpdate = true;
      this.pendingMin = this.pendingFinal = cap;
    }
    if (options.sensitiveHeaders !== undefined) this.extraTemplates = sensitiveTemplatesOf(options.sensitiveHeaders);
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
   * the start of the next block, with the smallest size in between first, if it dipped (§4.2).
   */
  setPeerMaxTableSize(size: number): void {
    this.queueUpdate(Math.min(checkTableSize('peer table size', size), this.tableCap));
  }

  /**
   * Encodes [name0, value0, ...] (names already lower case; strings latin1: a character above
   * U+00FF is a TypeError) into a new Buffer holding one header block.
   */
  encode(headers: readonly string[]): Buffer {
    if (headers.length % 2 !== 0) throw new TypeError('HPACK encoder: headers must be [name, value, ...] pairs');
    let pos = 0;
    if (this.pendingUpdate) pos = this.writeTableSizeUpdates(pos);
    for (let i = 0; i < headers.length; i += 2) pos = this.encodeField(headers[i]!, headers[i + 1]!, pos);
    const block = Buffer.allocUnsafe(pos);
    block.set(this.buf.subarray(0, pos));
    return block;
  }

  private encodeField(name: string, value: string, pos: number): number {
    this.ensure(pos + 3 * MAX_INTEGER_BYTES + HUFFMAN_WORST * (name.length + value.length));
    const info = this.lookup(name);
    const policy = info === undefined ? INDEX : info.policy;
    const never = isNeverIndexed(policy, value);

    let nameIndex = 0;
    if (info !== undefined) {
      if (!never) {
        // A full match is one index. Never-indexed fields skip this: they never enter the table.
        const full = this.fieldIndex(info, value);
        if (full !== 0) return writeInteger(this.buf, 0x80, 7, full, pos);
      }
      nameIndex = info.staticIndex;
      if (nameIndex === 0 && info.dynamicName !== 0) nameIndex = STATIC_TABLE_LENGTH + this.table.indexOfSeq(info.dynamicName);
    }

    if (never) {
      pos = writeInteger(this.buf, 0x10, 4, nameIndex, pos);
    } else if (mayIndex(policy, value) && (name.length + value.length + 32) * 4 <= this.table.maxSize * 3) {
      // (An entry over 3/4 of the table would flush most of it for one field.)
      pos = writeInteger(this.buf, 0x40, 6, nameIndex, pos);
      if (nameIndex === 0) pos = this.writeName(info, name, pos);
      this.insert(name, value);
      return writeString(this.buf, value, pos, this.huffman);
    } else {
      pos = writeInteger(this.buf, 0x00, 4, nameIndex, pos);
    }
    if (nameIndex === 0) pos = this.writeName(info, name, pos);
    return writeString(this.buf, value, pos, this.huffman);
  }

  /** The map entry for a name, created from its template on first use; undefined if unknown. */
  private lookup(name: string): NameInfo | undefined {
    const known = this.names.get(name);
    if (known !== undefined) return known;
    const template = this.extraTemplates?.get(name) ?? NAME_TEMPLATES.get(name);
    return template === undefined ? undefined : this.create(name, template, true);
  }

  private create(name: string, template: NameTemplate, permanent: boolean): NameInfo {
    // Spelled out (not spread) so every NameInfo has one shape and creation stays cheap.
    const info: NameInfo = {
      policy: template.policy,
      staticIndex: template.staticIndex,
      staticValues: template.staticValues,
      dynamicName: 0,
      dynamicValues: null,
      literal: null,
      permanent,
    };
    this.names.set(name, info);
    return info;
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

  private insert(name: string, value: string): void {
    const seq = this.table.nextSeq;
    this.table.add(name, value);
    // Look the name up after the insertion: its evictions may have dropped a learnt name's entry.
    const info = this.names.get(name) ?? this.create(name, LEARNT, false);
    info.dynamicName = seq;
    (info.dynamicValues ??= new Map()).set(value, seq);
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
    if (!info.permanent && info.dynamicName === 0 && info.dynamicValues === null) this.names.delete(name);
  }

  private queueUpdate(size: number): void {
    if (!this.pendingUpdate) {
      if (size === this.table.maxSize) return; // nothing changes, nothing to say
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
      pos = writeInteger(this.buf, 0x20, 5, this.pendingMin, pos);
      this.table.setMaxSize(this.pendingMin);
    }
    pos = writeInteger(this.buf, 0x20, 5, this.pendingFinal, pos);
    this.table.setMaxSize(this.pendingFinal);
    return pos;
  }

  /** A literal name; for names with a map entry the encoded bytes are computed once. */
  private writeName(info: NameInfo | undefined, name: string, pos: number): number {
    if (info === undefined) return writeString(this.buf, name, pos, this.huffman);
    let literal = info.literal;
    if (literal === null) {
      const end = writeString(this.buf, name, pos, this.huffman);
      literal = info.literal = Buffer.from(this.buf.subarray(pos, end));
      return end;
    }
    literal.copy(this.buf, pos);
    return pos + literal.length;
  }

  private ensure(bytes: number): void {
    if (bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(bytes, this.buf.length * 2));
    this.buf.copy(next);
    this.buf = next;
  }
}

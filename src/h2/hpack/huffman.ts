// Huffman coding of HPACK string literals (RFC 7541 §5.2, Appendix B).
//
// Decoding walks a finite-state machine four bits at a time, as nghttp2 does: the states are the
// 256 internal nodes of the code tree, and for each (state, nibble) one precomputed int says where
// the walk lands, which symbol (at most one: the shortest code is 5 bits) it completed, whether
// it hit EOS (an error), and whether stopping there is legal padding (at most 7 bits, all ones).
// So the hot loop is two table reads per input byte, no branches on individual bits and no
// allocation. Encoding packs codes into an int32 accumulator, flushing whole bytes.

import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-data.js';

const EOS = 256;

// Layout of a decode-table entry: bits 0..7 symbol, 8..19 next state × 16 (so the next lookup is
// `(entry >> 8 & 0xfff) | nibble` with no multiply), then three flags.
const NEXT_SHIFT = 8;
const NEXT_MASK = 0xfff;
const EMITS = 1 << 20;
const ACCEPTS = 1 << 21;
const FAILS = 1 << 22;

/** (state × 16 + nibble) → entry, 256 states × 16 nibbles. */
const DECODE_TABLE: Int32Array = buildDecodeTable();

/** Code and bit length per byte value, for the encoder (EOS is never encoded). */
const ENCODE_CODES = new Uint32Array(256);
const ENCODE_LENGTHS = new Uint8Array(256);
for (let sym = 0; sym < 256; sym++) {
  ENCODE_CODES[sym] = HUFFMAN_CODES[sym]!;
  ENCODE_LENGTHS[sym] = HUFFMAN_LENGTHS[sym]!;
}

function buildDecodeTable(): Int32Array {
  // Tree of internal nodes: child[node * 2 + bit] is another node id (>= 0), ~symbol for a leaf
  // (-1 is symbol 0), or UNSET while building.
  const UNSET = -1000;
  const child: number[] = [UNSET, UNSET];
  const depth: number[] = [0];
  const allOnes: boolean[] = [true];
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        if (child[slot] !== UNSET) throw new Error(`Huffman table: code of symbol ${sym} collides`);
        child[slot] = ~sym;
        break;
      }
      let next = child[slot]!;
      if (next === UNSET) {
        next = depth.length;
        child[slot] = next;
        child.push(UNSET, UNSET);
        depth.push(depth[node]! + 1);
        allOnes.push(allOnes[node]! && bit === 1);
      } else if (next < 0) {
        throw new Error(`Huffman table: code of symbol ${sym} has a prefix that is a code`);
      }
      node = next;
    }
  }
  const states = depth.length;
  if (states !== 256 || child.includes(UNSET)) throw new Error('Huffman table: the code tree is not complete');

  const table = new Int32Array(states * 16);
  for (let state = 0; state < states; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = child[node * 2 + ((nibble >>> i) & 1)]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = ~next;
        if (sym === EOS) {
          entry |= FAILS; // RFC 7541 §5.2: a string containing EOS is a decoding error
          break;
        }
        if (entry & EMITS) throw new Error('Huffman table: two symbols in one nibble');
        entry |= EMITS | sym;
        node = 0;
      }
      // Ending here is legal if we sit on a symbol boundary, or inside a prefix of EOS that is at
      // most 7 bits long (longer padding, or padding that is not all ones, is an error).
      if (node === 0 || (allOnes[node]! && depth[node]! <= 7)) entry |= ACCEPTS;
      table[state * 16 + nibble] = entry | ((node * 16) << NEXT_SHIFT);
    }
  }
  return table;
}

/**
 * Decodes `src[start, end)` into `dst`, writing at most `limit` bytes (and never past
 * `dst.length`). Returns the decoded length, which may exceed `limit`: the caller then knows the
 * string is too long without the bytes having been stored. Returns -1 if the input is not a valid
 * Huffman string (EOS inside, bad or overlong padding).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array, limit: number): number {
  const table = DECODE_TABLE;
  const max = limit < dst.length ? limit : dst.length;
  let n = 0;
  let base = 0; // current state × 16
  let entry = ACCEPTS; // the empty string is valid
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    entry = table[base | (byte >>> 4)]!;
    if (entry & (EMITS | FAILS)) {
      if (entry & FAILS) return -1;
      if (n < max) dst[n] = entry & 0xff;
      n++;
    }
    entry = table[((entry >>> NEXT_SHIFT) & NEXT_MASK) | (byte & 0xf)]!;
    if (entry & (EMITS | FAILS)) {
      if (entry & FAILS) return -1;
      if (n < max) dst[n] = entry & 0xff;
      n++;
    }
    base = (entry >>> NEXT_SHIFT) & NEXT_MASK;
  }
  return entry & ACCEPTS ? n : -1;
}

/** Largest possible decoded length of `encodedLength` Huffman bytes (5 bits per symbol at best). */
export function huffmanMaxDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

/**
 * Length in bytes of the Huffman coding of `str` (read as latin1). Throws a TypeError for a
 * character above U+00FF: header strings are octets, and silently truncating would change them.
 */
export function huffmanEncodedLength(str: string): number {
  const lengths = ENCODE_LENGTHS;
  let bits = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c > 0xff) throw new TypeError(`HPACK: header string has a character above U+00FF at ${i}`);
    bits += lengths[c]!;
  }
  return (bits + 7) >>> 3;
}

/** Writes the Huffman coding of `str` at `dst[pos]`; returns the position after it. Same TypeError. */
export function huffmanEncode(str: string, dst: Uint8Array, pos: number): number {
  const codes = ENCODE_CODES;
  const lengths = ENCODE_LENGTHS;
  // At most 7 pending bits survive each flush, so adding a code of up to 24 bits stays within 31
  // bits of an int32; longer codes (rare control and high bytes) go in two halves.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c > 0xff) throw new TypeError(`HPACK: header string has a character above U+00FF at ${i}`);
    let code = codes[c]!;
    let len = lengths[c]!;
    if (len > 24) {
      const high = len - 16;
      acc = (acc << high) | (code >>> 16);
      bits += high;
      while (bits >= 8) {
        bits -= 8;
        dst[pos++] = acc >>> bits;
        acc &= (1 << bits) - 1;
      }
      code &= 0xffff;
      len = 16;
    }
    acc = (acc << len) | code;
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      dst[pos++] = acc >>> bits;
      acc &= (1 << bits) - 1;
    }
  }
  // Pad the last byte with the most significant bits of EOS, which are all ones (§5.2).
  if (bits > 0) dst[pos++] = (acc << (8 - bits)) | (0xff >>> bits);
  return pos;
}

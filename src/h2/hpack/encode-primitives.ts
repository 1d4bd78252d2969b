// HPACK's two primitive representations (RFC 7541 §5), written into the encoder's buffer at a
// position, returning the position after them: an integer with an N-bit prefix (§5.1) and a
// string literal (§5.2), Huffman-coded when that is shorter. The caller (encoder.ts) has made
// room first: these never grow the buffer and allocate nothing.

import type { Buffer } from 'node:buffer';
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';

/** Integer with an N-bit prefix (§5.1); `bits` are the representation's pattern bits. */
export function writeInteger(buf: Buffer, bits: number, prefixBits: number, value: number, pos: number): number {
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

/**
 * From this length a raw string is copied by Buffer's native write (~100-140 ns whatever the
 * length) rather than a character at a time (~3.4 ns a character: 2.7 µs for an 800-character
 * bearer token, 3.2 % of a busy outbound's CPU on such calls); below it the loop is cheaper.
 */
const NATIVE_COPY_FROM = 40;
const WIDE_CHARACTER = /[^\x00-\xff]/;

/** String literal (§5.2), Huffman-coded when that is strictly shorter. */
export function writeString(buf: Buffer, str: string, pos: number, huffman: boolean): number {
  const length = str.length;
  if (huffman) {
    if (length < 127) {
      // One pass: Huffman-code after a 1-octet length prefix (the result must be < 127 octets
      // to be chosen), and fall back to raw octets if it did not come out shorter.
      const end = huffmanEncode(str, buf, pos + 1);
      if (end - pos - 1 < length) {
        buf[pos] = 0x80 | (end - pos - 1);
        return end;
      }
    } else {
      const huffmanLength = huffmanEncodedLength(str);
      if (huffmanLength < length) return huffmanEncode(str, buf, writeInteger(buf, 0x80, 7, huffmanLength, pos));
    }
  }
  pos = writeInteger(buf, 0x00, 7, length, pos);
  if (length >= NATIVE_COPY_FROM) {
    // a latin1 write would keep only the low byte of a wider character: refused first, as below
    const wide = str.search(WIDE_CHARACTER);
    if (wide >= 0) throw new TypeError(`HPACK: header string has a character above U+00FF at ${wide}`);
    buf.write(str, pos, length, 'latin1');
    return pos + length;
  }
  for (let i = 0; i < length; i++) {
    const c = str.charCodeAt(i);
    if (c > 0xff) throw new TypeError(`HPACK: header string has a character above U+00FF at ${i}`);
    buf[pos + i] = c;
  }
  return pos + length;
}

// Property tests (fast-check): generated header lists survive encode → decode across many
// blocks through one encoder/decoder pair with the tables in step, table size changes included;
// arbitrary and mutated bytes never make the decoder throw anything but HpackError, exceed its
// list limit or take long; and the Huffman state machine agrees with a slow bit-by-bit reference.

import t from 'tap';
import fc from 'fast-check';
import { HpackDecoder, HpackEncoder, HpackError } from '../../src/h2/hpack/index.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../src/h2/hpack/huffman.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../../src/h2/hpack/huffman-data.js';

const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const token = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 1, maxLength: 20 });
const pooledName = fc.constantFrom(':method', ':path', ':authority', ':status', 'content-type', 'accept', 'x-trace', 'x-forwarded-client-cert', 'user-agent', 'te');
const sensitiveName = fc.constantFrom('authorization', 'cookie', 'proxy-authorization', 'set-cookie', 'x-secret');
const pooledValue = fc.constantFrom('GET', '/', '/api/v1/orders', '/search?q=1', 'application/json', 'trailers', '200', 'x'.repeat(300), '');
const field = fc.oneof(
  fc.tuple(pooledName, pooledValue),
  fc.tuple(pooledName, latin1),
  fc.tuple(token, latin1),
  fc.tuple(sensitiveName, fc.oneof(latin1, pooledValue)),
  fc.tuple(token, fc.string({ minLength: 500, maxLength: 3000 })), // bigger than 3/4 of small tables
);
type Step = { kind: 'block'; headers: Array<[string, string]> } | { kind: 'table'; size: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.array(field, { maxLength: 20 }).map((headers) => ({ kind: 'block' as const, headers })) },
  { weight: 1, arbitrary: fc.constantFrom(0, 64, 256, 1000, 4096, 8192).map((size) => ({ kind: 'table' as const, size })) },
);

t.test('round trip: encode → decode across many blocks, tables in step, size changes included', async (t) => {
  let blocks = 0;
  fc.assert(
    fc.property(fc.constantFrom(0, 256, 4096, 65536), fc.boolean(), fc.array(step, { minLength: 1, maxLength: 12 }), (cap, huffman, steps) => {
      const encoder = new HpackEncoder({ maxTableSize: cap, huffman, sensitiveHeaders: ['x-secret'] });
      const decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 2 ** 32 - 1 });
      for (const s of steps) {
        if (s.kind === 'table') {
          // We (the decoder's side) advertise a new size; once acknowledged both sides apply it.
          decoder.setMaxTableSize(s.size);
          encoder.setPeerMaxTableSize(s.size);
          continue;
        }
        const list = s.headers.flat();
        const decoded = decoder.decode(encoder.encode(list));
        blocks++;
        if (JSON.stringify(decoded) !== JSON.stringify(list)) return false;
        if (JSON.stringify(decoder.dynamicTableEntries()) !== JSON.stringify(encoder.dynamicTableEntries())) return false;
        if (decoder.dynamicTableSize > decoder.dynamicTableMaxSize) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.ok(blocks > 1000, `${blocks} blocks round-tripped`);
});

/** Decodes and checks the contract: HpackError only, list within the limit, quick. */
function checkedDecode(decoder: HpackDecoder, bytes: Uint8Array, limit: number): 'ok' | HpackError['code'] {
  const started = process.hrtime.bigint();
  try {
    const list = decoder.decode(bytes);
    let size = 0;
    for (let i = 0; i < list.length; i += 2) size += list[i]!.length + list[i + 1]!.length + 32;
    if (size > limit) throw new Error(`decoded list of ${size} octets is over the limit ${limit}`);
    if (list.length % 2 !== 0) throw new Error('odd list');
    return 'ok';
  } catch (err) {
    if (err instanceof HpackError) return err.code;
    throw err;
  } finally {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (ms > 500) throw new Error(`decoding ${bytes.length} octets took ${ms} ms`);
  }
}

t.test('fuzz: arbitrary bytes, on fresh and on seasoned decoders', async (t) => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(0, 100, 4096), fc.constantFrom(64, 1024, 16384), (bytes, tableSize, limit) => {
      seen.add(checkedDecode(new HpackDecoder({ maxTableSize: tableSize, maxHeaderListSize: limit }), bytes, limit));
    }),
    { numRuns: 5000 },
  );
  // One decoder fed many random blocks keeps its contract until the first compression error.
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 30 }), (blocks) => {
      const decoder = new HpackDecoder({ maxHeaderListSize: 512 });
      for (const bytes of blocks) if (checkedDecode(decoder, bytes, 512) === 'COMPRESSION_ERROR') break;
    }),
    { numRuns: 1000 },
  );
  t.ok(seen.has('COMPRESSION_ERROR') && seen.has('ok'), `outcomes seen: ${[...seen].join(', ')}`);
});

t.test('fuzz: valid blocks mutated (flipped, inserted, deleted, truncated bytes)', async (t) => {
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  );
  const outcomes = new Map<string, number>();
  fc.assert(
    fc.property(fc.array(fc.array(field, { maxLength: 12 }), { minLength: 2, maxLength: 5 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (lists, mutations, huffman) => {
      const encoder = new HpackEncoder({ huffman });
      const decoder = new HpackDecoder({ maxHeaderListSize: 4096 });
      const blocks = lists.map((l) => encoder.encode(l.flat()));
      // Decode all but the last cleanly (building up a table), then the mutated last one.
      for (const b of blocks.slice(0, -1)) if (checkedDecode(decoder, b, 4096) === 'COMPRESSION_ERROR') return;
      let bytes = [...blocks[blocks.length - 1]!];
      for (const m of mutations) {
        const at = bytes.length === 0 ? 0 : m.at % bytes.length;
        if (m.op === 'flip' && bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << m.bit);
        else if (m.op === 'set' && bytes.length > 0) bytes[at] = m.byte;
        else if (m.op === 'insert') bytes.splice(at, 0, m.byte);
        else if (m.op === 'delete') bytes.splice(at, 1);
        else if (m.op === 'truncate') bytes = bytes.slice(0, at);
      }
      const outcome = checkedDecode(decoder, Uint8Array.from(bytes), 4096);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }),
    { numRuns: 2000 },
  );
  t.ok(outcomes.size >= 2, `outcomes: ${JSON.stringify([...outcomes])}`);
});

/** Slow reference: match codes bit by bit against the table, check the padding rule by hand. */
function referenceHuffmanDecode(bytes: Uint8Array): string | null {
  const byCode = new Map<string, number>();
  HUFFMAN_CODES.forEach((code, sym) => byCode.set(code.toString(2).padStart(HUFFMAN_LENGTHS[sym]!, '0'), sym));
  let out = '';
  let pending = '';
  for (const byte of bytes) {
    for (const bit of byte.toString(2).padStart(8, '0')) {
      pending += bit;
      const sym = byCode.get(pending);
      if (sym === undefined) continue;
      if (sym === 256) return null;
      out += String.fromCharCode(sym);
      pending = '';
    }
  }
  return pending.length <= 7 && !pending.includes('0') ? out : null;
}

t.test('Huffman: the nibble state machine agrees with the bit-by-bit reference', async (t) => {
  const dst = Buffer.alloc(1024);
  const agree = (bytes: Uint8Array): boolean => {
    const n = huffmanDecode(bytes, 0, bytes.length, dst, dst.length);
    const ref = referenceHuffmanDecode(bytes);
    return ref === null ? n === -1 : n === ref.length && dst.toString('latin1', 0, n) === ref;
  };
  // Random bytes are mostly invalid; encoded strings with a random tail exercise the padding rule.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), agree), { numRuns: 3000 });
  fc.assert(
    fc.property(latin1, fc.uint8Array({ maxLength: 2 }), (s, tail) => {
      const enc = Buffer.alloc(huffmanEncodedLength(s) + tail.length);
      const end = huffmanEncode(s, enc, 0);
      enc.set(tail, end);
      return agree(enc.subarray(0, end)) && agree(enc) && referenceHuffmanDecode(enc.subarray(0, end)) === s;
    }),
    { numRuns: 3000 },
  );
  t.pass('agreed on every generated input');
});

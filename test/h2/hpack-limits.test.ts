// The decoder as an attack surface: HPACK bombs, the header list limit at its exact edge and
// the table staying in step after HEADER_LIST_TOO_LARGE, lengths and integers that lie, indices
// out of range, and the rules of dynamic table size updates (RFC 7541 §4.2, §5.1, §6.3).

import t from 'tap';
import { HpackDecoder, HpackEncoder, HpackError } from '../../src/h2/hpack/index.js';

/** RFC 7541 §5.1 integer: `pattern` holds the representation bits above the prefix. */
function int(pattern: number, prefixBits: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [pattern | value];
  const out = [pattern | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}
const raw = (s: string): number[] => [...int(0, 7, s.length), ...Buffer.from(s, 'latin1')];
const block = (...parts: number[][]): Buffer => Buffer.from(parts.flat());

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof HpackError) return err.code;
    throw err;
  }
  return 'no error';
}

/** Largest array `push` builds while `fn` runs: the decoder's output list grows only by push. */
function maxPushedLength(fn: () => void): number {
  const push = Array.prototype.push;
  let max = 0;
  Array.prototype.push = function (this: unknown[], ...items: unknown[]) {
    const n = push.apply(this, items);
    if (n > max) max = n;
    return n;
  };
  try {
    fn();
  } finally {
    Array.prototype.push = push;
  }
  return max;
}

t.test('HPACK bomb: one 4 KB entry referenced 200 000 times stops at the limit, in bounded memory', async (t) => {
  const d = new HpackDecoder({ maxHeaderListSize: 16384 });
  const big = 'a'.repeat(4000);
  // 200 KB that would expand to 800 MB of header list.
  const bomb = Buffer.concat([block([0x40], raw('x'), raw(big)), Buffer.alloc(200_000, 0x80 | 62)]);
  const started = process.hrtime.bigint();
  let code = '';
  const longest = maxPushedLength(() => (code = codeOf(() => d.decode(bomb))));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(code, 'HEADER_LIST_TOO_LARGE');
  t.ok(longest >= 2 && longest <= (16384 / 32) * 2, `the list never grew past the limit (longest push: ${longest})`);
  t.ok(ms < 2000, `no pathological time (${ms.toFixed(0)} ms)`);
  t.same(d.dynamicTableEntries(), [['x', big]], 'the entry was still added');
});

t.test('a list of huge Huffman literals is parsed without building the strings or a big scratch', async (t) => {
  const e = new HpackEncoder();
  const d = new HpackDecoder({ maxHeaderListSize: 16384 });
  const list: string[] = [];
  for (let i = 0; i < 50; i++) list.push(`x-${i}`, 'w'.repeat(100_000)); // Huffman codes 'w' in 7 bits
  let code = '';
  const longest = maxPushedLength(() => (code = codeOf(() => d.decode(e.encode(list)))));
  t.equal(code, 'HEADER_LIST_TOO_LARGE');
  t.equal(longest, 0, 'not even the first field fitted, so nothing was pushed');
  const scratch = (d as unknown as { scratch: Buffer }).scratch;
  t.ok(scratch.length <= 16384 * 2, `scratch stayed near the limit (${scratch.length} octets)`);
});

t.test('the limit counts name + value + 32 per field and is exact at the edge', async (t) => {
  const fits = block([0x00], raw('a'), raw('1234567')); // 1 + 7 + 32 = 40
  const over = block([0x00], raw('a'), raw('12345678')); // 41
  t.same(new HpackDecoder({ maxHeaderListSize: 40 }).decode(fits), ['a', '1234567']);
  t.equal(codeOf(() => new HpackDecoder({ maxHeaderListSize: 40 }).decode(over)), 'HEADER_LIST_TOO_LARGE');
  // Indexed fields count too: :method GET is 7 + 3 + 32 = 42.
  t.equal(codeOf(() => new HpackDecoder({ maxHeaderListSize: 41 }).decode(block([0x82]))), 'HEADER_LIST_TOO_LARGE');
  t.same(new HpackDecoder({ maxHeaderListSize: 42 }).decode(block([0x82])), [':method', 'GET']);
});

t.test('after HEADER_LIST_TOO_LARGE the table is in step: later blocks still decode', async (t) => {
  const e = new HpackEncoder();
  const d = new HpackDecoder({ maxHeaderListSize: 1000 });
  // The first field alone exceeds the limit; both fields are still inserted in the table.
  const first = ['x-filler', 'f'.repeat(1500), 'x-late', 'indexed-after-the-limit'];
  t.equal(codeOf(() => d.decode(e.encode(first))), 'HEADER_LIST_TOO_LARGE');
  t.same(d.dynamicTableEntries(), [['x-late', 'indexed-after-the-limit'], ['x-filler', 'f'.repeat(1500)]], 'entries after the limit kept');
  t.same(d.dynamicTableEntries(), e.dynamicTableEntries(), 'same table as the encoder');
  const second = e.encode(['x-late', 'indexed-after-the-limit', 'x-filler', 'short']);
  t.equal(second[0], 0x80 | 62, 'the second block refers to the entry added after the limit');
  t.same(d.decode(second), ['x-late', 'indexed-after-the-limit', 'x-filler', 'short'], 'and to the oversized one by name');
});

t.test('an entry larger than the whole table empties it, without error (§4.4)', async (t) => {
  const d = new HpackDecoder({ maxTableSize: 100 });
  d.decode(block([0x40], raw('k'), raw('v')));
  t.equal(d.dynamicTableSize, 34);
  t.same(d.decode(block([0x40], raw('big'), raw('z'.repeat(66)))), ['big', 'z'.repeat(66)]); // 101 octets
  t.equal(d.dynamicTableSize, 0);
  t.same(d.dynamicTableEntries(), []);
});

t.test('lengths that lie: 2^31-1 octets announced in a block of a few octets, and 2^31', async (t) => {
  for (const h of [0x00, 0x80]) {
    const claim = (n: number): Buffer => block([0x00], [...int(h, 7, n), 0x61]);
    const d = new HpackDecoder();
    t.equal(codeOf(() => d.decode(claim(2 ** 31 - 1))), 'COMPRESSION_ERROR', `name of 2^31-1 octets (H=${h >> 7})`);
    t.equal(codeOf(() => new HpackDecoder().decode(claim(2 ** 31))), 'COMPRESSION_ERROR', `name of 2^31 octets (H=${h >> 7})`);
    t.equal((d as unknown as { scratch: Buffer }).scratch.length, 256, 'nothing was allocated for it');
    t.equal(codeOf(() => new HpackDecoder().decode(block([0x00], raw('a'), [...int(h, 7, 5), 0x61]))), 'COMPRESSION_ERROR', 'value one short');
  }
});

t.test('integers: overflow, too many continuation bytes, truncation', async (t) => {
  const d = (bytes: number[]) => codeOf(() => new HpackDecoder({ maxTableSize: 2 ** 32 - 1 }).decode(Buffer.from(bytes)));
  t.equal(d([0x3f, 0xe0, 0xff, 0xff, 0xff, 0x07]), 'no error', 'size update to 31 + 0x7fffffe0 = 2^31-1 is a legal integer');
  t.equal(d([0x3f, 0xe1, 0xff, 0xff, 0xff, 0x07]), 'COMPRESSION_ERROR', '2^31 + ... is refused');
  t.equal(d([0x3f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 'COMPRESSION_ERROR', 'six continuation bytes of zeros');
  t.equal(d([0x3f, 0x80, 0x80, 0x80, 0x80, 0x00]), 'no error', 'five are tolerated');
  t.equal(d([0xff]), 'COMPRESSION_ERROR', 'truncated after the prefix');
  t.equal(d([0xff, 0x80]), 'COMPRESSION_ERROR', 'truncated inside the continuation');
  t.equal(d([0x00, 0x01]), 'COMPRESSION_ERROR', 'string cut short');
  t.equal(d([0x00]), 'COMPRESSION_ERROR', 'literal without its name');
  t.equal(d([0x00, 0x00]), 'COMPRESSION_ERROR', 'literal without its value');
});

t.test('indices: 0 and anything past the tables are errors', async (t) => {
  const d = (bytes: number[]) => codeOf(() => new HpackDecoder().decode(Buffer.from(bytes)));
  t.equal(d([0x80]), 'COMPRESSION_ERROR', 'indexed field 0');
  t.equal(d([0x80 | 61]), 'no error', 'static 61 is the last static entry');
  t.equal(d([0x80 | 62]), 'COMPRESSION_ERROR', '62 with an empty dynamic table');
  t.equal(d([0x40, 0x01, 0x61, 0x01, 0x62, 0x80 | 62]), 'no error', '62 after one insertion');
  t.equal(d([0x40, 0x01, 0x61, 0x01, 0x62, 0x80 | 63]), 'COMPRESSION_ERROR', '63 after one insertion');
  t.equal(d([0x40 | 62, 0x01, 0x62]), 'COMPRESSION_ERROR', 'literal with a name index past the tables');
  t.equal(d([0x0f, 0x30, 0x01, 0x62]), 'COMPRESSION_ERROR', 'literal without indexing, name index 63');
  t.equal(d([0x1f, 0x2e, 0x01, 0x62]), 'no error', 'never indexed, name index 61');
});

t.test('dynamic table size updates: only first, never above what we advertise', async (t) => {
  const code = (d: HpackDecoder, bytes: number[]) => codeOf(() => d.decode(Buffer.from(bytes)));
  t.equal(code(new HpackDecoder(), int(0x20, 5, 4097)), 'COMPRESSION_ERROR', 'above the advertised 4096');
  t.equal(code(new HpackDecoder(), int(0x20, 5, 4096)), 'no error', 'exactly the advertised size');
  t.equal(code(new HpackDecoder(), [0x82, 0x20]), 'COMPRESSION_ERROR', 'after a field');
  t.equal(code(new HpackDecoder(), [0x20, 0x3f, 0xe1, 0x1f, 0x82]), 'no error', 'two updates, both first');

  const d = new HpackDecoder();
  d.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62])); // one entry of 34 octets
  d.decode(Buffer.from([0x20 | 10])); // shrinks to 10: evicted
  t.equal(d.dynamicTableSize, 0);
  t.equal(d.dynamicTableMaxSize, 10);
});

t.test('lowering SETTINGS_HEADER_TABLE_SIZE obliges the peer to confirm with an update', async (t) => {
  const code = (d: HpackDecoder, bytes: number[]) => codeOf(() => d.decode(Buffer.from(bytes)));
  const seeded = () => {
    const d = new HpackDecoder();
    d.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62]));
    return d;
  };
  let d = seeded();
  d.setMaxTableSize(100);
  t.equal(code(d, [0x82]), 'COMPRESSION_ERROR', 'no update at the start of the next block');

  d = seeded();
  d.setMaxTableSize(100);
  t.equal(code(d, [...int(0x20, 5, 101), 0x82]), 'COMPRESSION_ERROR', 'update above the new limit');

  d = seeded();
  d.setMaxTableSize(0);
  d.setMaxTableSize(4096);
  t.equal(code(d, [...int(0x20, 5, 4096), 0x82]), 'COMPRESSION_ERROR', 'dipped to 0 in between: 4096 alone is not enough');
  d = seeded();
  d.setMaxTableSize(0);
  d.setMaxTableSize(4096);
  t.equal(code(d, [0x20, ...int(0x20, 5, 4096), 0x82]), 'no error', '0 then 4096');
  t.equal(d.dynamicTableSize, 0, 'the 0 emptied the table');
  t.equal(code(d, [0x82]), 'no error', 'the obligation is met once');

  d = seeded();
  d.setMaxTableSize(8192);
  t.equal(code(d, [0x82]), 'no error', 'raising the limit requires nothing');
  t.equal(code(d, [...int(0x20, 5, 8192), 0x82]), 'no error', 'and allows bigger updates');
  t.equal(code(d, [...int(0x20, 5, 8193)]), 'COMPRESSION_ERROR');
});

t.test('option validation', async (t) => {
  t.throws(() => new HpackDecoder({ maxTableSize: -1 }), RangeError);
  t.throws(() => new HpackDecoder({ maxHeaderListSize: 1.5 }), RangeError);
  t.throws(() => new HpackEncoder({ maxTableSize: Number.NaN }), RangeError);
  t.throws(() => new HpackEncoder().setPeerMaxTableSize(2 ** 32), RangeError);
  t.throws(() => new HpackEncoder().encode(['odd']), TypeError);
});

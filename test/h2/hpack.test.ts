// HPACK against the RFC itself: every example of RFC 7541 Appendix C (C.1 integers, C.2 single
// representations, C.3–C.6 request and response series with and without Huffman), decoded with
// the table state checked after each block, and re-encoded by our encoder into output that
// decodes to the same list with the same table on both sides.

import t from 'tap';
import { HpackDecoder, HpackEncoder, HpackError } from '../../src/h2/hpack/index.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../src/h2/hpack/huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const flat = (pairs: Array<[string, string]>): string[] => pairs.flat();

interface Step {
  block: string;
  headers: Array<[string, string]>;
  table: Array<[string, string]>; // newest first
  size: number;
}

const REQUESTS: Array<[string, string]>[] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];
const REQUEST_TABLES: Array<[string, string]>[] = [
  [[':authority', 'www.example.com']],
  [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
  [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
];
const REQUEST_SIZES = [57, 110, 164];

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const LOCATION = 'https://www.example.com';
const RESPONSES: Array<[string, string]>[] = [
  [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOCATION]],
  [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOCATION]],
  [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOCATION], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]],
];
const RESPONSE_TABLES: Array<[string, string]>[] = [
  [['location', LOCATION], ['date', DATE1], ['cache-control', 'private'], [':status', '302']],
  [[':status', '307'], ['location', LOCATION], ['date', DATE1], ['cache-control', 'private']],
  [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]],
];
const RESPONSE_SIZES = [222, 222, 215];

const series = (blocks: string[], lists: Array<[string, string]>[], tables: Array<[string, string]>[], sizes: number[]): Step[] =>
  blocks.map((block, i) => ({ block, headers: lists[i]!, table: tables[i]!, size: sizes[i]! }));

const C3 = series(
  ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865', '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'],
  REQUESTS, REQUEST_TABLES, REQUEST_SIZES);
const C4 = series(
  ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'],
  REQUESTS, REQUEST_TABLES, REQUEST_SIZES);
const C5 = series([
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
   2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
   54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
   5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
], RESPONSES, RESPONSE_TABLES, RESPONSE_SIZES);
const C6 = series([
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
   2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
   77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
   9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
], RESPONSES, RESPONSE_TABLES, RESPONSE_SIZES);

t.test('C.1 integers: 10 and 1337 with a 5-bit prefix, 42 on a full octet', async (t) => {
  // Decoded through a dynamic table size update, the one representation with a 5-bit prefix.
  const d = new HpackDecoder({ maxTableSize: 4096 });
  d.decode(Buffer.from([0x20 | 10]));
  t.equal(d.dynamicTableMaxSize, 10, 'C.1.1: 0a');
  d.decode(Buffer.from([0x20 | 31, 0x9a, 0x0a]));
  t.equal(d.dynamicTableMaxSize, 1337, 'C.1.2: 1f 9a 0a');
  // C.1.3 (42 starting at an octet boundary) as a string length: 0x2a then 42 raw octets.
  const value = 'v'.repeat(42);
  t.same(d.decode(Buffer.concat([hex('0001 61 2a'), Buffer.from(value)])), ['a', value], 'C.1.3: 2a');
  // And our encoder writes 1337 exactly like C.1.2.
  const e = new HpackEncoder({ maxTableSize: 65536 });
  e.setPeerMaxTableSize(1337);
  t.same([...e.encode([]).subarray(0, 3)], [0x3f, 0x9a, 0x0a]);
});

t.test('C.2 single representations, each on a fresh decoder', async (t) => {
  const cases: Array<[string, string, Array<[string, string]>, Array<[string, string]>, number]> = [
    ['C.2.1 literal with indexing', '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', [['custom-key', 'custom-header']], [['custom-key', 'custom-header']], 55],
    ['C.2.2 literal without indexing', '040c 2f73 616d 706c 652f 7061 7468', [[':path', '/sample/path']], [], 0],
    ['C.2.3 literal never indexed', '1008 7061 7373 776f 7264 0673 6563 7265 74', [['password', 'secret']], [], 0],
    ['C.2.4 indexed', '82', [[':method', 'GET']], [], 0],
  ];
  for (const [name, block, headers, table, size] of cases) {
    const d = new HpackDecoder();
    t.same(d.decode(hex(block)), flat(headers), name);
    t.same(d.dynamicTableEntries(), table, `${name}: table`);
    t.equal(d.dynamicTableSize, size, `${name}: table size`);
  }
});

const runSeries = (name: string, steps: Step[], tableSize: number): void => {
  t.test(`${name}: decoded block by block with the table state of the RFC`, async (t) => {
    const d = new HpackDecoder({ maxTableSize: tableSize });
    steps.forEach((step, i) => {
      t.same(d.decode(hex(step.block)), flat(step.headers), `${name}.${i + 1} headers`);
      t.same(d.dynamicTableEntries(), step.table, `${name}.${i + 1} table`);
      t.equal(d.dynamicTableSize, step.size, `${name}.${i + 1} table size`);
    });
  });
};
runSeries('C.3 requests without Huffman', C3, 4096);
runSeries('C.4 requests with Huffman', C4, 4096);
runSeries('C.5 responses without Huffman (256-octet table, evictions)', C5, 256);
runSeries('C.6 responses with Huffman (256-octet table, evictions)', C6, 256);

t.test('C.3 and C.4: our encoder produces the RFC bytes exactly', async (t) => {
  for (const [name, steps, huffman] of [['C.3', C3, false], ['C.4', C4, true]] as const) {
    const e = new HpackEncoder({ huffman });
    const d = new HpackDecoder();
    steps.forEach((step, i) => {
      const block = e.encode(flat(step.headers));
      t.equal(block.toString('hex'), hex(step.block).toString('hex'), `${name}.${i + 1} bytes`);
      t.same(d.decode(block), flat(step.headers));
      t.same(e.dynamicTableEntries(), step.table, `${name}.${i + 1} encoder table`);
    });
  }
});

t.test('C.5 and C.6 lists through our encoder: same list out, same table on both sides', async (t) => {
  for (const huffman of [false, true]) {
    const e = new HpackEncoder({ huffman });
    e.setPeerMaxTableSize(256);
    const d = new HpackDecoder({ maxTableSize: 256 });
    RESPONSES.forEach((list, i) => {
      const block = e.encode(flat(list));
      t.same(d.decode(block), flat(list), `response ${i + 1}, huffman ${huffman}`);
      t.same(d.dynamicTableEntries(), e.dynamicTableEntries(), 'tables in step');
      t.equal(d.dynamicTableSize, e.dynamicTableSize);
      t.ok(e.dynamicTableSize <= 256);
    });
    // set-cookie is never indexed by our policy: the RFC's 0x5a literal becomes 0x1f 0x28 (§6.2.3).
    const last = e.encode(['set-cookie', COOKIE]);
    t.equal(last[0], 0x1f, 'set-cookie sent as never indexed with static name 55');
    t.equal(last[1], 55 - 15);
  }
});

t.test('Huffman primitives: RFC strings, every byte value, and a bad-input catalogue', async (t) => {
  const dst = Buffer.alloc(64);
  const words: Array<[string, string]> = [
    ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
    ['a8eb 1064 9cbf', 'no-cache'],
    ['25a8 49e9 5ba9 7d7f', 'custom-key'],
    ['6402', '302'],
    ['aec3 771a 4b', 'private'],
    ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', LOCATION],
  ];
  for (const [code, text] of words) {
    const n = huffmanDecode(hex(code), 0, hex(code).length, dst, dst.length);
    t.equal(dst.toString('latin1', 0, n), text, `decode ${text}`);
    const out = Buffer.alloc(64);
    t.equal(out.subarray(0, huffmanEncode(text, out, 0)).toString('hex'), hex(code).toString('hex'), `encode ${text}`);
    t.equal(huffmanEncodedLength(text), hex(code).length);
  }
  // Every byte value, including the 30-bit codes split in two by the encoder.
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  const enc = Buffer.alloc(2048);
  const len = huffmanEncode(all + all.split('').reverse().join(''), enc, 0);
  const back = Buffer.alloc(1024);
  t.equal(back.toString('latin1', 0, huffmanDecode(enc, 0, len, back, back.length)), all + all.split('').reverse().join(''));

  const bad: Array<[number[], string]> = [
    [[0xff], '8 bits of padding'],
    [[0x1f, 0xff], '"a" then a whole octet of padding'],
    [[0xff, 0x9f, 0xff, 0xff, 0xff], '29 bits of padding'],
    [[0xff, 0xff, 0xff, 0xff, 0xfc], 'EOS inside the string'],
    [[0x00], 'padding of zeros'],
    [[0x1c], '"a" then padding 100 (not all ones)'],
  ];
  for (const [bytes, why] of bad) t.equal(huffmanDecode(Buffer.from(bytes), 0, bytes.length, dst, dst.length), -1, why);
  t.equal(huffmanDecode(Buffer.from([0x1f]), 0, 1, dst, dst.length), 1, '"a" with 3 one bits of padding is fine');
  t.equal(huffmanDecode(Buffer.from([0x00, 0x01]), 0, 2, dst, 1), 3, 'the full length is reported past the limit');
  t.throws(() => huffmanEncodedLength('\u0100'), TypeError, 'characters above U+00FF are refused');
});

t.test('a Uint8Array view into a bigger buffer decodes like a Buffer', async (t) => {
  const block = hex(C4[0]!.block);
  const backing = new Uint8Array(block.length + 10).fill(0xff);
  backing.set(block, 7);
  t.same(new HpackDecoder().decode(backing.subarray(7, 7 + block.length)), flat(REQUESTS[0]!));
});

t.test('decoder errors are HpackError with a code', async (t) => {
  const d = new HpackDecoder();
  const err = t.throws(() => d.decode(Buffer.from([0x80]))) as HpackError;
  t.ok(err instanceof HpackError);
  t.equal(err.code, 'COMPRESSION_ERROR');
});

// The encoder's choices, byte by byte: which fields are never indexed, which are sent without
// indexing, when Huffman is used, how dynamic entries are referred to, when table size updates
// are emitted, and that its lookup maps stay bounded and exact as entries are evicted.

import t from 'tap';
import { HpackDecoder, HpackEncoder } from '../../src/h2/hpack/index.js';

const NEVER = 0x10, WITHOUT = 0x00, INCREMENTAL = 0x40;
const kind = (first: number): number => (first & 0x80 ? 0x80 : first & 0x40 ? INCREMENTAL : first & 0x20 ? 0x20 : first & 0xf0);

t.test('sensitive fields are never indexed, and never enter the table', async (t) => {
  const e = new HpackEncoder({ sensitiveHeaders: ['X-Api-Key'] });
  const d = new HpackDecoder();
  const cases: Array<[string, string]> = [
    ['authorization', 'Bearer abc'],
    ['proxy-authorization', 'Basic Zm9vOmJhcg=='],
    ['set-cookie', 'session=0123456789abcdef0123456789'],
    ['cookie', 'id=1234567890123456'], // 19 octets: low entropy
    ['x-api-key', 'k-123'],
  ];
  for (const [name, value] of cases) {
    for (let round = 0; round < 2; round++) {
      const block = e.encode([name, value]);
      t.equal(kind(block[0]!), NEVER, `${name} (round ${round + 1}) is a never-indexed literal`);
      t.same(d.decode(block), [name, value]);
    }
  }
  t.same(e.dynamicTableEntries(), [], 'none of them was added');
  t.equal(e.encode(['authorization', 'x'])[0], NEVER | 15, 'with the static name index (23 = 15 + 8)');
});

t.test('long cookies and x-forwarded-client-cert are indexed: one octet the second time', async (t) => {
  const e = new HpackEncoder();
  for (const [name, value] of [['cookie', 'id=12345678901234567'], ['x-forwarded-client-cert', 'By=spiffe://mesh/ns/a/sa/b;Hash=0123abcd;URI=spiffe://mesh/ns/c/sa/d']]) {
    t.equal(kind(e.encode([name!, value!])[0]!), INCREMENTAL, `${name} first time: literal with indexing`);
    t.equal(e.encode([name!, value!]).length, 1, `${name} second time: one index`);
  }
});

t.test('per-message values are sent without indexing', async (t) => {
  const e = new HpackEncoder();
  for (const [name, value] of [['content-length', '1234'], ['x-request-id', '5f2c0d6e-1b1a-4c38-9f0e-0a0b0c0d0e0f'], ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'], [':path', '/search?q=meshcar']]) {
    t.equal(kind(e.encode([name!, value!])[0]!), WITHOUT, `${name}`);
  }
  t.equal(e.encode(['content-length', '1'])[0], WITHOUT | 15, 'static name 28 = 15 + 13');
  t.equal(kind(e.encode([':path', '/api/orders'])[0]!), INCREMENTAL, 'a path without a query string is indexed');
  t.equal(kind(e.encode(['x-huge', 'h'.repeat(3100)])[0]!), WITHOUT, 'a field bigger than 3/4 of the table is not indexed');
  t.equal(kind(e.encode(['x-large', 'l'.repeat(3000)])[0]!), INCREMENTAL, 'one just under it is');
  t.same(e.dynamicTableEntries().map(([n]) => n), ['x-large', ':path']);
});

t.test('full matches are one index; name matches reuse the static or dynamic name', async (t) => {
  const e = new HpackEncoder();
  t.same([...e.encode([':method', 'GET', ':scheme', 'https', 'accept-encoding', 'gzip, deflate'])], [0x82, 0x87, 0x90], 'static full matches');
  t.equal(e.encode(['accept', ''])[0], 0x80 | 19, 'an empty static value matches too');
  const first = e.encode(['x-custom', 'one']);
  t.equal(first[0], INCREMENTAL, 'new name: literal name');
  const second = e.encode(['x-custom', 'two']);
  t.equal(second[0], INCREMENTAL | 62, 'same name, new value: dynamic name index 62');
  t.same([...e.encode(['x-custom', 'one', 'x-custom', 'two'])], [0x80 | 63, 0x80 | 62], 'both values by index, newest first');
});

t.test('Huffman when strictly shorter; raw otherwise; never with huffman: false', async (t) => {
  const e = new HpackEncoder();
  const text = e.encode(['x-a', 'www.example.com']);
  t.equal(text[text.length - 13]! & 0x80, 0x80, 'text: Huffman (12 octets instead of 15)');
  const binary = e.encode(['x-b', '\u00ff\u00fe\u00fd']);
  t.equal(binary[binary.length - 4], 3, 'high bytes: raw (Huffman would take 9 octets)');
  const plain = new HpackEncoder({ huffman: false }).encode(['x-a', 'www.example.com']);
  t.equal(plain[plain.length - 16], 15, 'huffman: false sends raw');
  t.same(new HpackDecoder().decode(Buffer.concat([text])), ['x-a', 'www.example.com']);
  t.throws(() => e.encode(['x-c', 'snow \u2603']), TypeError, 'characters above U+00FF are refused');
  t.equal(e.encode([]).length, 0, 'an empty list is an empty block');
});

// a raw string from 40 characters on is copied natively (encode-primitives.ts): byte for byte,
// every Latin-1 character included, and a wider character is still refused, never cut to its low byte
t.test('long raw strings: copied byte for byte; a character above U+00FF refused at its place', async (t) => {
  const e = new HpackEncoder({ huffman: false });
  const d = new HpackDecoder();
  const latin1 = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
  for (const value of ['x'.repeat(39), 'y'.repeat(40), 'Bearer ' + 'eyJ0-_abc'.repeat(90), latin1.slice(1) + latin1]) {
    const block = e.encode(['authorization', value]);
    t.ok(block.includes(Buffer.from(value, 'latin1')), `${value.length} characters: the value verbatim`);
    t.same(d.decode(block), ['authorization', value], `${value.length} characters: decodes to the same`);
  }
  for (const at of [0, 39, 799]) {
    const value = 'a'.repeat(at) + '\u0100' + 'b'.repeat(800 - at);
    t.throws(() => e.encode(['x-wide', value]), { name: 'TypeError', message: new RegExp(`above U\\+00FF at ${at}$`) }, `U+0100 at ${at} of ${value.length}`);
  }
  t.throws(() => e.encode(['x-wide', 'c'.repeat(50) + '\u2603']), TypeError, 'a snowman at the end of 51');
});

t.test('table size updates: emitted once, smallest first, only when the size changes', async (t) => {
  const e = new HpackEncoder();
  e.encode(['x-a', '1']);
  e.setPeerMaxTableSize(8192);
  t.equal(e.encode(['x-a', '1']).length, 1, 'peer allows more than our cap of 4096: nothing to signal');
  e.setPeerMaxTableSize(0);
  e.setPeerMaxTableSize(4096);
  t.same([...e.encode(['x-a', '1']).subarray(0, 4)], [0x20, 0x3f, 0xe1, 0x1f], 'dipped to 0 and back: 0 then 4096');
  t.same(e.dynamicTableEntries(), [['x-a', '1']], 'the 0 evicted, the field was indexed again');
  t.equal(kind(e.encode(['x-b', '2'])[0]!), INCREMENTAL, 'the update is not repeated');
  e.setPeerMaxTableSize(40);
  const block = e.encode([]);
  t.same([...block], [0x3f, 0x09], 'shrunk to 40');
  t.same(e.dynamicTableEntries(), [['x-b', '2']], 'and evicted down to 40 octets');

  const capped = new HpackEncoder({ maxTableSize: 100 });
  t.same([...capped.encode([':method', 'GET'])], [0x3f, 0x45, 0x82], 'a cap below 4096 is announced in the first block');
  const off = new HpackEncoder({ maxTableSize: 0 });
  t.same([...off.encode(['x-a', '1'])].slice(0, 2), [0x20, WITHOUT], 'table off: size 0, nothing indexed');
});

t.test('the lookup maps stay exact and bounded through evictions', async (t) => {
  const e = new HpackEncoder({ maxTableSize: 256 });
  const d = new HpackDecoder({ maxTableSize: 256 });
  e.setPeerMaxTableSize(256);
  d.setMaxTableSize(256);
  let diverged = -1;
  for (let i = 0; i < 5000 && diverged < 0; i++) {
    const list = [`x-name-${i}`, `v${i}`, `x-name-${i - 3}`, `v${i - 3}`, 'x-shared', `${i % 7}`];
    if (JSON.stringify(d.decode(e.encode(list))) !== JSON.stringify(list)) diverged = i;
  }
  t.equal(diverged, -1, 'every block decoded to its list');
  const names = (e as unknown as { names: Map<string, unknown> }).names;
  t.ok(names.size < 61 + 30 + 10, `name map holds ${names.size} names after 5000 distinct ones`);
  t.same(d.dynamicTableEntries(), e.dynamicTableEntries());
});

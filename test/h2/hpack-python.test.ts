// HPACK against a second implementation we did not write: python-hpack (the codec under Python's
// h2, Debian python3-hpack). Our blocks decode there to the same lists through one Decoder; its
// blocks (Huffman, dynamic table, a table size change, never-indexed fields) decode here.
// Skipped when python3 with hpack is not installed.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { HpackDecoder, HpackEncoder } from '../../src/h2/hpack/index.js';

const SCRIPT = String.raw`
import sys, json
sys.path.append('/usr/lib/python3/dist-packages')
try:
    import hpack
except ImportError:
    print('missing'); sys.exit(0)
job = json.load(sys.stdin)
out = {}
dec = hpack.Decoder()
dec.max_header_list_size = 1 << 20
out['decoded'], out['sensitive'] = [], []
for b in job['ours']:
    hs = dec.decode(bytes.fromhex(b), raw=True)
    out['decoded'].append([[n.decode('latin1'), v.decode('latin1')] for n, v in hs])
    out['sensitive'].append(sorted(set(h[0].decode('latin1') for h in hs if isinstance(h, hpack.NeverIndexedHeaderTuple))))
enc = hpack.Encoder()
blocks = []
for item in job['theirs']:
    if isinstance(item, int):
        enc.header_table_size = item
        continue
    fields = []
    for n, v in item:
        nb, vb = n.encode('latin1'), v.encode('latin1')
        fields.append(hpack.NeverIndexedHeaderTuple(nb, vb) if n in ('authorization', 'x-secret') else (nb, vb))
    blocks.append(enc.encode(fields, huffman=True).hex())
out['blocks'] = blocks
print(json.dumps(out))
`;

type List = Array<[string, string]>;

interface PythonResult { decoded: List[]; sensitive: string[][]; blocks: string[] }

function runPython(job: { ours: string[]; theirs: Array<List | number> }): PythonResult | null {
  const res = spawnSync('python3', ['-c', SCRIPT], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.error || res.stdout.trim() === 'missing' || res.status !== 0) {
    if (res.status !== 0 && !res.error) throw new Error(`python3 failed: ${res.stderr}`);
    return null;
  }
  return JSON.parse(res.stdout) as PythonResult;
}

const name = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 12 });
const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const fixed: List[] = [
  [[':method', 'GET'], [':scheme', 'https'], [':authority', 'orders.shop.svc'], [':path', '/api/orders'], ['authorization', 'Bearer t0k3n'], ['x-repeat', 'same']],
  [[':method', 'GET'], [':scheme', 'https'], [':authority', 'orders.shop.svc'], [':path', '/api/orders'], ['authorization', 'Bearer t0k3n'], ['x-repeat', 'same']],
  [[':status', '200'], ['content-type', 'application/json'], ['set-cookie', 'a=b'], ['x-big', 'q'.repeat(3000)], ['x-latin1', 'd\u00e9j\u00e0 \u00ff']],
  [['x-repeat', 'same'], ['x-secret', 'pw'], ['cookie', 'k=' + 'v'.repeat(30)], ['cookie', 'k=' + 'v'.repeat(30)]],
];

const available = runPython({ ours: [], theirs: [] }) !== null;

t.test('python-hpack decodes our blocks, we decode its blocks', { skip: available ? false : 'python3 with hpack is not installed' }, async (t) => {
  const random = fc.sample(fc.array(fc.tuple(fc.oneof(name, fc.constantFrom('x-repeat', 'accept', ':path')), value), { maxLength: 15 }), { numRuns: 150, seed: 7 });
  const lists: List[] = [...fixed, ...random, ...fixed];
  const encoder = new HpackEncoder({ sensitiveHeaders: ['x-secret'] });
  const ours = lists.map((l) => encoder.encode(l.flat()).toString('hex'));
  // python-hpack as the encoder: the same lists, with its table shrunk to 256 halfway.
  const theirs: Array<List | number> = [...lists.slice(0, 80), 256, ...lists.slice(80)];

  const result = runPython({ ours, theirs });
  if (result === null) {
    t.comment('python3 with hpack is not installed: nothing compared');
    return;
  }
  t.equal(result.decoded.length, lists.length);
  let mismatches = 0;
  result.decoded.forEach((got, i) => {
    if (JSON.stringify(got) !== JSON.stringify(lists[i])) mismatches++;
  });
  t.equal(mismatches, 0, `python-hpack decoded all ${lists.length} of our blocks to the lists we sent`);
  const neverIndexed = (l: List) => [...new Set(l.filter(([n, v]) => ['authorization', 'proxy-authorization', 'set-cookie', 'x-secret'].includes(n) || (n === 'cookie' && v.length < 20)).map(([n]) => n))].sort();
  t.same(result.sensitive, lists.map(neverIndexed), 'and saw the never-indexed representation exactly on the sensitive fields');
  t.ok(result.sensitive.flat().length >= 6, 'sensitive fields were in the sample');

  const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  let theirMismatches = 0;
  let sawUpdate = false;
  result.blocks.forEach((hex, i) => {
    const block = Buffer.from(hex, 'hex');
    if ((block[0]! & 0xe0) === 0x20) sawUpdate = true;
    if (JSON.stringify(decoder.decode(block)) !== JSON.stringify(lists[i]!.flat())) theirMismatches++;
  });
  t.equal(theirMismatches, 0, `we decoded all ${result.blocks.length} of python-hpack's blocks`);
  t.ok(sawUpdate, 'python-hpack sent a dynamic table size update');
  t.equal(decoder.dynamicTableMaxSize, 256);
});

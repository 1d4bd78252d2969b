// ReplayCopy keeps a body as the bytes that went by, in one buffer of its own: 1-byte chunks come
// back whole, a copy taken stays as it was when more is added, and a body past the limit is
// refused at the chunk that passes it (the caller drops the copy then). Its memory bound, on
// real sidecars: test/e2e/replay-copy-memory.test.ts.

import t from 'tap';
import { ReplayCopy } from '../../src/http/replay-copy.js';

t.test('1-byte chunks up to the limit, then refused', async (t) => {
  const copy = new ReplayCopy(64_000);
  const source = Buffer.alloc(64 * 1024);
  let refused = 0;
  for (let i = 0; i < 64_000; i++) {
    source[i] = i % 251;
    // each chunk a view of a larger buffer, as a socket read's slices are
    if (!copy.add(source.subarray(i, i + 1))) refused += 1;
  }
  t.equal(refused, 0, 'every chunk taken');
  t.equal(copy.size, 64_000);
  const bytes = copy.bytes();
  t.same(bytes, source.subarray(0, 64_000), 'the bytes, in order');
  t.notOk(copy.add(Buffer.from('x')), 'one byte more is past the limit');
  t.equal(copy.size, 64_000, 'and not kept');
  source.fill(0);
  t.equal(bytes[1], 1, 'a copy, not a view of what it was given');
});

t.test('a copy taken stays as it was', async (t) => {
  const copy = new ReplayCopy(1024);
  copy.add(Buffer.from('abc'));
  const first = copy.bytes();
  copy.add(Buffer.from('def'));
  t.equal(first.toString(), 'abc');
  t.equal(copy.bytes().toString(), 'abcdef');
  t.equal(new ReplayCopy(10).bytes().length, 0, 'an empty copy');
});

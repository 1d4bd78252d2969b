// The bytes a handshake gate has read and not yet examined (src/tls-failures/pending-input.ts):
// reads are joined only once they complete the record waited for, so that a record trickled in
// 1-byte reads is copied once, not once per byte (a review: 64 KiB held that way cost a dial
// 0.7 s of CPU). A pure unit: the gate's own tests run it over real TLS.

import t from 'tap';
import { PendingInput } from '../../src/tls-failures/pending-input.js';

t.test('a record in 1-byte reads is joined once, when its last byte comes', async (t) => {
  const pending = new PendingInput();
  const record = Buffer.concat([Buffer.from([23, 3, 3, 0x3e, 0x80]), Buffer.alloc(16_000, 7)]);
  t.notOk(pending.add(record.subarray(0, 4)), 'four bytes: no header yet');
  t.ok(pending.add(record.subarray(4, 5)), 'the header is whole: examine it');
  t.equal(pending.join().length, 5);
  pending.waitFor(record.length);
  let ready = 0;
  for (let at = 5; at < record.length; at++) if (pending.add(record.subarray(at, at + 1))) ready++;
  t.equal(ready, 1, 'ready once, at the last byte');
  t.equal(pending.bytes.length, 5, 'nothing joined before then');
  t.same(pending.join(), record, 'then joined whole, in order');
  t.same(pending.take(record.length), record, 'taken');
  t.equal(pending.length, 0);
  t.notOk(pending.add(Buffer.from([22])), 'the next record waits for its header again');
});

t.test('takeAll joins what is left; clear drops it', async (t) => {
  const pending = new PendingInput();
  pending.add(Buffer.from('ab'));
  pending.add(Buffer.from('c'));
  t.equal(pending.takeAll().toString(), 'abc');
  t.equal(pending.length, 0);
  pending.add(Buffer.from('de'));
  pending.clear();
  t.equal(pending.length, 0);
  t.equal(pending.join().length, 0);
});

// The per-key log limit shared by the CA's refused-connection lines and the TLS failure lines:
// one line per key per window, the lines in between counted and reported by the next one, and
// a bounded number of keys remembered.

import t from 'tap';
import { LogPerKey, leftOut } from '../src/log-per-key.js';

t.test('one line per key per window; the next says how many were left out', async (t) => {
  const limit = new LogPerKey(200);
  const first = limit.take('10.0.0.1');
  t.same(first, { suppressed: 0, seconds: 0 });
  t.equal(leftOut(first!, 'refused'), '', 'nothing left out yet');
  t.equal(limit.take('10.0.0.1'), undefined, 'within the window: not logged');
  t.equal(limit.take('10.0.0.1'), undefined);
  t.ok(limit.take('10.0.0.2'), 'another key has its own window');
  const start = Date.now();
  // wait for the window to pass (bounded)
  while (Date.now() - start < 250) await new Promise((resolve) => setImmediate(resolve));
  const next = limit.take('10.0.0.1');
  t.equal(next?.suppressed, 2);
  t.equal(leftOut(next!, 'from 10.0.0.1'), ` (and 2 more from 10.0.0.1 in the last ${next!.seconds} s, not logged)`);
});

t.test('keys beyond the cap: the oldest is forgotten', async (t) => {
  const limit = new LogPerKey(60_000, 2);
  t.ok(limit.take('a'));
  t.ok(limit.take('b'));
  t.ok(limit.take('c'), 'a third key is logged, forgetting a');
  t.ok(limit.take('a'), 'a was forgotten: logged again');
  t.equal(limit.take('c'), undefined, 'c is remembered');
});

t.test('at most maxLinesPerWindow lines for all keys together; a line held back is said by its key next', async (t) => {
  const limit = new LogPerKey(200, 4096, 3);
  t.ok(limit.take('a'));
  t.ok(limit.take('b'));
  t.ok(limit.take('c'));
  t.equal(limit.take('d'), undefined, 'a fourth key within the window: over the budget, not logged');
  t.equal(limit.take('e'), undefined);
  const start = Date.now();
  while (Date.now() - start < 250) await new Promise((resolve) => setImmediate(resolve));
  const d = limit.take('d');
  t.equal(d?.suppressed, 1, 'the next window: d is logged, saying the line held back');
  t.ok(limit.take('e'));
  t.ok(limit.take('a'));
  t.equal(limit.take('f'), undefined, 'the new window has its budget of 3 too');
});

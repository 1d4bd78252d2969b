// The per-key log limit shared by the CA's refused-connection lines and the TLS failure lines:
// one line per key per window, the lines in between counted and reported by the next one, and
// a bounded number of keys remembered; a budget for all keys together, the lines it held back
// said by the next line let through, whatever its key.

import t from 'tap';
import { LogPerKey, leftOut, leftOutFields } from '../src/log-per-key.js';

t.test('one line per key per window; the next says how many were left out', async (t) => {
  const limit = new LogPerKey(200);
  const first = limit.take('10.0.0.1');
  t.match(first, { suppressed: 0, seconds: 0, overBudget: 0 });
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

t.test('at most maxLinesPerWindow lines for all keys together; the lines held back are said by the next line let through', async (t) => {
  const limit = new LogPerKey(200, 4096, 3);
  t.ok(limit.take('a'));
  t.ok(limit.take('b'));
  t.ok(limit.take('c'));
  t.equal(limit.take('d'), undefined, 'a fourth key within the window: over the budget, not logged');
  t.equal(limit.take('e'), undefined);
  const start = Date.now();
  while (Date.now() - start < 250) await new Promise((resolve) => setImmediate(resolve));
  // a key that never came before: d and e may never come back (a scanner's addresses)
  const f = limit.take('f');
  t.match(f, { suppressed: 0, overBudget: 2, budget: { lines: 3, seconds: 0.2 } }, 'the next window: the next line says the two held back');
  t.equal(leftOut(f!, 'refused'), ' (and 2 more like it over the limit of 3 lines per 0.2 s, not logged)');
  const d = limit.take('d');
  t.match(d, { suppressed: 0, overBudget: 0 }, 'said once: not again by d');
  t.ok(limit.take('e'));
  t.equal(limit.take('g'), undefined, 'the new window has its budget of 3 too');
});

t.test('both counts in one parenthesis', async (t) => {
  t.equal(leftOut({ suppressed: 4, seconds: 9, overBudget: 7, budget: { lines: 100, seconds: 10 } }, 'from 10.0.0.9'), ' (and 4 more from 10.0.0.9 in the last 9 s, and 7 more like it over the limit of 100 lines per 10 s, not logged)');
  t.same(leftOutFields({ suppressed: 0, seconds: 0, overBudget: 7, budget: { lines: 100, seconds: 10 } }), { overBudget: 7 });
  t.same(leftOutFields({ suppressed: 0, seconds: 0, overBudget: 0, budget: { lines: 100, seconds: 10 } }), {});
});

// the windows ran on the wall clock: stepped back an hour (NTP correcting a host that ran ahead),
// a key's next line and the budget for all keys waited the whole hour
t.test('a window passes by the running time, whatever the wall clock does', async (t) => {
  const { movableClock } = await import('./helpers/movable-clock.js');
  const limit = new LogPerKey(200, 4096, 1);
  t.ok(limit.take('10.0.0.1'));
  t.equal(limit.take('10.0.0.2'), undefined, 'the budget of 1 line is spent');
  const clock = movableClock();
  t.teardown(() => clock.restore());
  clock.offset.ms = -3_600_000;
  const start = performance.now();
  while (performance.now() - start < 250) await new Promise((resolve) => setImmediate(resolve));
  const next = limit.take('10.0.0.1');
  clock.restore();
  t.match(next, { suppressed: 0, overBudget: 1 }, 'the key has its line again, and the budget is renewed');
});

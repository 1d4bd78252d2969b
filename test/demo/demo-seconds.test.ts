// DEMO_SECONDS is read strictly: a number of seconds, or unset/empty/0 for "until Ctrl-C";
// anything else (30s, -5, abc) is one line naming the variable, before anything starts.

import t from 'tap';
import { demoSeconds } from '../../src/demo/demo-seconds.js';

t.test('a number of seconds, or nothing for until Ctrl-C', async (t) => {
  t.equal(demoSeconds(undefined), 0);
  t.equal(demoSeconds(''), 0);
  t.equal(demoSeconds('0'), 0);
  t.equal(demoSeconds('30'), 30);
  t.equal(demoSeconds(' 2.5 '), 2.5);
});

t.test('anything else is refused, naming the variable (it ran until Ctrl-C without a word)', async (t) => {
  for (const value of ['30s', '-5', 'abc', '1e3', 'Infinity', '0x10', '3 0']) {
    t.throws(() => demoSeconds(value), { message: `DEMO_SECONDS=${value}: expected a number of seconds, e.g. 30 (unset or 0: until Ctrl-C)` }, value);
  }
});

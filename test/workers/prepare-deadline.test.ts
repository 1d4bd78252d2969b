// Each worker's bound for a reload's prepare (src/workers/prepare-deadline.ts): the asks' 10 s,
// plus three times the primary's own time, times the workers per core (more workers than
// cores compile the same specs in turns), at most PREPARE_MAX_MS. The whole round with a real slow spec is in
// slow-prepare.test.ts.

import t from 'tap';
import { ASK_TIMEOUT_MS } from '../../src/workers/asks.js';
import { prepareDeadlineMs, PREPARE_MAX_MS } from '../../src/workers/prepare-deadline.js';

t.test('the bound grows with the primary time and with workers per core', async (t) => {
  t.equal(prepareDeadlineMs(0, 2, 2), ASK_TIMEOUT_MS, 'nothing to compile: the asks own bound');
  t.equal(prepareDeadlineMs(2000, 2, 2), ASK_TIMEOUT_MS + 6000, 'a worker per core: three times the primary time');
  t.equal(prepareDeadlineMs(2000, 1, 4), ASK_TIMEOUT_MS + 6000, 'fewer workers than cores: no less');
  t.equal(prepareDeadlineMs(2000, 8, 2), ASK_TIMEOUT_MS + 24_000, 'four workers per core: four times that');
  t.equal(prepareDeadlineMs(-5, 2, 0), ASK_TIMEOUT_MS, 'no negative time, no division by zero cores');
  t.equal(prepareDeadlineMs(60_000, 8, 2), PREPARE_MAX_MS, 'at most PREPARE_MAX_MS: the health checks wait for the round');
});

// How the primary replaces a dead worker (src/workers/replacements.ts), by why it died. A worker
// killed for missing its health checks used to be re-forked at once every time, past the
// crash-loop bound (a worker starved twice in a row was SIGKILLed and re-forked every ~6 s for
// ever): now it counts as a lost worker, as a crash does, in the same bound. A worker killed for
// a reload it did not confirm is still replaced at once, and is no restart.

import t from 'tap';
import { Replacements } from '../../src/workers/replacements.js';
import { MAX_RESTARTS, RestartPolicy, WINDOW_MS } from '../../src/workers/restart-policy.js';

const start = 1_000_000;

t.test('health kills go through the crash-loop bound: five a minute at once, then each waits for the window', async (t) => {
  const replacements = new Replacements(new RestartPolicy());
  for (let i = 0; i < MAX_RESTARTS; i++) {
    replacements.kill(i + 1, 'health');
    t.same(replacements.exited(i + 1, true, start + i * 1000), { cause: 'health', delayMs: 0 }, `health kill ${i + 1}: replaced at once`);
  }
  replacements.kill(10, 'health');
  t.same(replacements.exited(10, true, start + 5000), { cause: 'health', delayMs: WINDOW_MS - 5000 }, 'the sixth waits until the first is a minute old');
});

t.test('crashes and health kills share one bound; reload kills are replaced at once and count for nothing', async (t) => {
  const replacements = new Replacements(new RestartPolicy());
  for (let i = 0; i < 10; i++) {
    replacements.kill(100 + i, 'reload');
    t.same(replacements.exited(100 + i, true, start), { cause: 'reload', delayMs: 0 });
  }
  for (let i = 0; i < MAX_RESTARTS - 1; i++) t.same(replacements.exited(i + 1, true, start + i), { cause: 'crash', delayMs: 0 }, `crash ${i + 1}: at once`);
  replacements.kill(20, 'health');
  t.same(replacements.exited(20, true, start + 10), { cause: 'health', delayMs: 0 }, 'the fifth restart, a health kill: at once');
  const sixth = replacements.exited(21, true, start + 20);
  t.equal(sixth.cause, 'crash');
  t.ok('delayMs' in sixth && sixth.delayMs > 0, 'the sixth, a crash, waits: the health kill counted');
});

t.test('before the sidecar is ready: a crash fails the start, a health kill is replaced', async (t) => {
  const replacements = new Replacements(new RestartPolicy());
  t.same(replacements.exited(1, false, start), { cause: 'start-up' });
  replacements.kill(2, 'health');
  t.same(replacements.exited(2, false, start), { cause: 'health', delayMs: 0 });
  replacements.kill(3, 'reload');
  t.same(replacements.exited(3, false, start), { cause: 'reload', delayMs: 0 });
});

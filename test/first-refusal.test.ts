// Reads side by side refuse with the first failure in the caller's order, not in time.
import t from 'tap';
import { firstRefusalInOrder } from '../src/first-refusal.js';

t.test('the first failed read in the list is the refusal, whichever failed first', async (t) => {
  // the first fails later than the second: Promise.all would give the second's
  const slowFailure = new Promise<string>((_, reject) => setImmediate(() => reject(new Error('first file'))));
  const quickFailure = Promise.reject(new Error('second file'));
  await t.rejects(firstRefusalInOrder([slowFailure, quickFailure]), { message: 'first file' });
  t.same(await firstRefusalInOrder([Promise.resolve('a'), Promise.resolve(2)]), ['a', 2], 'every value, in order');
});


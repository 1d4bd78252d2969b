import t from 'tap';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

t.test('accepts the written forms', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('2s'), 2000);
  t.equal(parseDuration('5m'), 300_000);
  t.equal(parseDuration('24h'), 86_400_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('1.5s'), 1500);
});

t.test('rejects what is not a duration', async (t) => {
  for (const text of ['15x', '-1s', '', '15', 's', '1 s', '1s ', '2s5', 'ms']) {
    t.equal(parseDuration(text), undefined, JSON.stringify(text));
  }
});

t.test('formats back to the largest whole unit', async (t) => {
  t.equal(formatDuration(86_400_000), '1d');
  t.equal(formatDuration(3_600_000), '1h');
  t.equal(formatDuration(90_000), '90s');
  t.equal(formatDuration(250), '250ms');
});

// The per-request deadline queue (src/http/deadline-queue.ts): a deadline fires once, not
// before it is due; a cancelled one never fires; one duration's deadlines fire in order from
// one timer; durations do not wait on each other; a lane with nothing pending goes away; and
// a pending deadline does not keep the process alive.

import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DeadlineQueue, MAX_IDLE_LANES } from '../../src/http/deadline-queue.js';

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('fires once, at the deadline and not before', async (t) => {
  const fired: Array<{ owner: string; ms: number; after: number }> = [];
  const start = performance.now();
  const queue = new DeadlineQueue<string>((owner, ms) => fired.push({ owner, ms, after: performance.now() - start }));
  queue.add('a', 60);
  await until(() => fired.length === 1, 'the deadline');
  t.equal(fired[0]?.owner, 'a');
  t.equal(fired[0]?.ms, 60, 'the callback learns the duration');
  t.ok((fired[0]?.after ?? 0) >= 59, `not before it is due (${fired[0]?.after.toFixed(1)} ms)`);
  t.ok((fired[0]?.after ?? 1e9) < 1_000, 'and soon after');
  await until(() => queue.laneCount === 0, 'the empty lane to go');
  t.equal(fired.length, 1, 'once');
});

t.test('cancelled deadlines never fire; the others of the lane fire in order, from one timer', async (t) => {
  const fired: number[] = [];
  const addedAt: number[] = [];
  let earliest = Infinity;
  const queue = new DeadlineQueue<number>((owner) => {
    fired.push(owner);
    earliest = Math.min(earliest, performance.now() - (addedAt[owner] as number));
  });
  const deadlines = [];
  for (let i = 0; i < 200; i++) {
    addedAt.push(performance.now());
    deadlines.push(queue.add(i, 200));
    // four groups 15 ms apart: a later group firing with the first would be 15 ms early
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 15));
  }
  for (let i = 0; i < 200; i += 2) deadlines[i]?.cancel();
  t.equal(queue.pending(), 100);
  t.equal(queue.laneCount, 1, 'one lane for one duration');
  await until(() => fired.length === 100, 'the 100 deadlines left');
  t.same(fired, Array.from({ length: 100 }, (_, i) => 2 * i + 1), 'exactly the ones not cancelled, oldest first');
  t.ok(earliest >= 199, `none fired before its 200 ms (earliest after ${earliest.toFixed(1)} ms)`);
  await until(() => queue.laneCount === 0, 'the lane to go');
  t.equal(queue.pending(), 0);
});

t.test('a shorter duration does not wait for a longer one', async (t) => {
  const fired: string[] = [];
  const queue = new DeadlineQueue<string>((owner) => fired.push(owner));
  const long = queue.add('long', 400);
  queue.add('short', 30);
  t.equal(queue.laneCount, 2);
  await until(() => fired.length === 1, 'the short deadline');
  t.same(fired, ['short']);
  long.cancel();
  await until(() => queue.laneCount === 0, 'both lanes to go', 2_000);
  t.same(fired, ['short'], 'the cancelled long one never fired');
});

t.test('a callback may add to the lane that is firing: each deadline still fires once', async (t) => {
  const fired: string[] = [];
  const queue: DeadlineQueue<string> = new DeadlineQueue<string>((owner) => {
    fired.push(owner);
    if (owner === 'first') queue.add('again', 20);
  });
  queue.add('first', 20);
  await until(() => fired.length === 2, 'the deadline added by the callback');
  t.same(fired, ['first', 'again']);
  await until(() => queue.laneCount === 0, 'the lane to go');
  t.same(fired, ['first', 'again']);
});

t.test('a pending deadline does not keep the process alive', async (t) => {
  const module = fileURLToPath(new URL('../../dist/http/deadline-queue.js', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then(({ DeadlineQueue }) => { new DeadlineQueue(() => {}).add('x', 60000); })`;
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => spawn(process.execPath, ['-e', script], { stdio: 'inherit' }).on('exit', resolve));
  t.equal(code, 0);
  t.ok(Date.now() - started < 10_000, `exited at once (${Date.now() - started} ms), not after the 60 s deadline`);
});

t.test('a finished request leaves nothing in the queue: 200,000 cancelled 60 s deadlines hold no memory', async (t) => {
  const module = fileURLToPath(new URL('../../dist/http/deadline-queue.js', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then(({ DeadlineQueue }) => {
    const queue = new DeadlineQueue(() => {});
    for (let i = 0; i < 1000; i++) queue.add({}, 60000).cancel();
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200000; i++) queue.add({ i }, 60000).cancel();
    globalThis.gc();
    console.log(JSON.stringify({ grewKb: Math.round((process.memoryUsage().heapUsed - before) / 1024), pending: queue.pending() }));
  })`;
  const out = await new Promise<string>((resolve) => {
    let text = '';
    const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (c: Buffer) => (text += c));
    child.on('exit', () => resolve(text));
  });
  const { grewKb, pending } = JSON.parse(out) as { grewKb: number; pending: number };
  t.equal(pending, 0);
  t.ok(grewKb < 1024, `the heap grew ${grewKb} KB (an entry kept per request would be several MB)`);
});

t.test('a deadline beyond setTimeout\'s 24.8 days is kept, not fired at once', async (t) => {
  const fired: string[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => process.removeListener('warning', onWarning));
  const queue = new DeadlineQueue<string>((owner) => fired.push(owner));
  const far = queue.add('far', 30 * 86_400_000);
  queue.add('near', 30);
  await until(() => fired.length === 1, 'the near deadline');
  await new Promise((r) => setTimeout(r, 50));
  t.same(fired, ['near'], 'the 30-day one waits (a timer longer than 2^31-1 ms would fire after 1 ms)');
  t.equal(queue.pending(), 1);
  t.notOk(warnings.includes('TimeoutOverflowWarning'), 'no timer was asked for more than 2^31-1 ms (Node would run it after 1 ms, again and again)');
  far.cancel();
});

t.test('a callback that throws leaves the lane working for the deadlines after it', async (t) => {
  const fired: string[] = [];
  const queue = new DeadlineQueue<string>((owner) => {
    fired.push(owner);
    if (owner === 'bad') throw new Error('callback failed');
  });
  const errors: unknown[] = [];
  const onError = (err: unknown) => errors.push(err);
  process.prependListener('uncaughtException', onError);
  t.teardown(() => process.removeListener('uncaughtException', onError));
  queue.add('bad', 20);
  await new Promise((r) => setTimeout(r, 5));
  queue.add('good', 20);
  await until(() => fired.includes('good'), 'the deadline after the one that threw');
  t.same(fired, ['bad', 'good']);
  t.equal(errors.length, 1, 'the error itself surfaced');
});

t.test('a few durations keep their lanes once empty (no timer re-made per request); many distinct ones do not pile up', async (t) => {
  const queue = new DeadlineQueue<number>(() => t.fail('nothing here is due'));
  for (let round = 0; round < 3; round++) for (const ms of [5_000, 15_000, 30_000]) queue.add(round, ms).cancel();
  t.equal(queue.laneCount, 3, 'the three configured timeouts keep their lanes, empty, until their timers run');
  for (let i = 0; i < 1_000; i++) queue.add(i, 36_000_000 + i).cancel();
  t.ok(queue.laneCount <= MAX_IDLE_LANES, `1,000 distinct durations, each cancelled: ${queue.laneCount} lanes kept, at most ${MAX_IDLE_LANES}`);
  t.equal(queue.pending(), 0);
  // past the bound, a lane with something pending stays whatever its count
  const held = Array.from({ length: 100 }, (_, i) => queue.add(i, 72_000_000 + i));
  t.ok(queue.laneCount >= 100, 'lanes with a deadline pending are all kept');
  for (const deadline of held) deadline.cancel();
  t.ok(queue.laneCount <= MAX_IDLE_LANES, 'and go once emptied');
});

t.test('past the bound, a callback that cancels the rest of its own lane: nothing cancelled fires, every lane goes', async (t) => {
  const fired: string[] = [];
  const partners = new Map<string, { cancel(): void }>();
  const queue = new DeadlineQueue<string>((owner) => {
    fired.push(owner);
    partners.get(owner)?.cancel(); // empties the lane while it fires: fire() drops it, once
  });
  const lanes = MAX_IDLE_LANES + 8;
  // 300 ms and up: a loaded machine's 10-ms sleep below must not outlast the first deadlines
  for (let i = 0; i < lanes; i++) queue.add(`first-${i}`, 300 + i);
  await new Promise((r) => setTimeout(r, 10));
  // the same durations, 10 ms later: still pending when the first of each lane fires
  t.same(fired, [], 'nothing due yet when the partners are added');
  for (let i = 0; i < lanes; i++) partners.set(`first-${i}`, queue.add(`second-${i}`, 300 + i));
  t.equal(queue.laneCount, lanes);
  await until(() => fired.length === lanes && queue.laneCount === 0, 'every lane fired and gone');
  t.notOk(fired.some((f) => f.startsWith('second-')), 'the cancelled deadlines never fired');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(fired.length, lanes, 'and nothing fired after');
  t.equal(queue.pending(), 0);
});

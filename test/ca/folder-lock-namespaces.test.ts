// A CA folder's lock (src/ca/folder-lock.ts) between processes that cannot see each other's
// pids: two containers on one volume (an overlapping restart, a second replica). The lock held
// only a pid, which a waiter in another PID namespace looked up in its own: no such process
// (or one of its own), so it took a live holder's lock at once, and two servers spent one
// single-use token or made two CAs in one folder (a review, with `unshare --pid`). The lock
// now names where its pid lives; one from elsewhere is a lease, kept changing by its holder's
// heartbeat and taken over once seen unchanged for 30 s by the waiter's own running clock.

import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCaDir } from '../helpers/ca.js';
import { pidNamespaceUnavailable } from '../helpers/mount-namespace.js';
import { LOCK_FILE, TAKEOVER_FILE, withCaLock } from '../../src/ca/folder-lock.js';

const WAITER = new URL('./fixtures/lock-waiter.mjs', import.meta.url).pathname;
/** A pid namespace no process of this test lives in, on this boot. */
const ELSEWHERE = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/pid:[1]`;

/** Runs the waiter as PID 1 of a new PID namespace (and its own /proc), as a container's process. */
function waitInAnotherNamespace(dir: string, waitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, WAITER, dir, String(waitMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => resolve(out.trim()));
  });
}

/** Holds the folder's lock until the returned release is called. */
async function hold(dir: string): Promise<{ release: () => void; done: Promise<void> }> {
  let release!: () => void;
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const done = withCaLock(dir, () => {
    entered();
    return new Promise<void>((resolve) => (release = resolve));
  });
  await inside;
  return { release, done };
}

const unavailable = pidNamespaceUnavailable();

t.test('a live holder is waited for by a waiter in another PID namespace, not taken over', { skip: unavailable ?? false }, async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const holder = await hold(dir);
  const outcome = await waitInAnotherNamespace(dir, 1_500);
  holder.release();
  await holder.done;
  t.match(outcome, /^busy: .* is being changed by another meshcar process \(pid \d+ in another container or on another host, see /, 'the waiter gave up after its wait; the holder kept the folder');
  // and the other way round once the lock is free: the waiter takes it
  t.equal(await waitInAnotherNamespace(dir, 1_500), 'took', 'a free folder is taken from the other namespace');
});

t.test('a lock from another PID namespace is a lease: waited for while it changes, taken over once seen unchanged long enough', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, LOCK_FILE);
  // pid 1 is alive here and 999999999 is not: neither says anything about another namespace
  for (const pid of ['1', '999999999']) {
    await writeFile(lock, `${pid} ${ELSEWHERE}`);
    // its time far in the past says nothing either: another host's clock, or a clock stepped
    const old = new Date(Date.now() - 3_600_000);
    await utimes(lock, old, old);
    await t.rejects(withCaLock(dir, async () => undefined, { until: performance.now() + 300, foreignStaleAfterMs: 1_000 }), { code: 'forbidden', message: /in another container or on another host/ }, `pid ${pid}'s lock from elsewhere is waited for until seen unchanged for the lease`);
    // its holder's heartbeat: a change restarts the count
    const touched = new Date();
    await utimes(lock, touched, touched);
    const started = performance.now();
    let ran = false;
    await withCaLock(
      dir,
      async () => {
        ran = true;
      },
      { foreignStaleAfterMs: 1_000 },
    );
    t.ok(ran && performance.now() - started >= 1_000, `pid ${pid}'s lock, unchanged for the lease, is taken over (${Math.round(performance.now() - started)} ms)`);
  }
});

// a holder paused past the lease lost the lock to a waiter elsewhere; on resuming, its release
// removed the new holder's lock (and its heartbeat kept it alive), and a third came in beside
// the second (a review: A and B, then B and C, inside together)
t.test("a holder whose lock was taken over leaves the new holder's lock alone", async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, LOCK_FILE);
  const holder = await hold(dir);
  // what a waiter in another container does once the lease ran out: the old lock gone, its own made
  await rm(lock);
  await writeFile(lock, `4242 ${ELSEWHERE}`);
  holder.release();
  await holder.done;
  t.equal(readFileSync(lock, 'utf8'), `4242 ${ELSEWHERE}`, 'the new holder\'s lock is still there');
});

t.test('a holder touches its lock while it holds it, so waiters elsewhere see it alive', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const holder = await hold(dir);
  const lock = join(dir, LOCK_FILE);
  const first = (await stat(lock)).mtimeMs;
  t.match(readFileSync(lock, 'utf8'), new RegExp(`^${process.pid} [0-9a-f-]+/pid:\\[\\d+\\]$`), 'the lock names our pid and where it lives');
  // the heartbeat is every 2 s: give it three
  const until = Date.now() + 6_000;
  let touched = false;
  while (!touched && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    touched = (await stat(lock)).mtimeMs > first;
  }
  holder.release();
  await holder.done;
  t.ok(touched, 'the lock\'s time moved while it was held');
});

/** `promise`, or 'still waiting' after `ms`: a wait that ignores its deadline shows as such, not as a hung test. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  return Promise.race([promise, new Promise<'still waiting'>((resolve) => setTimeout(resolve, ms, 'still waiting').unref())]);
}

// a command waits 10 s, and a lock from elsewhere is known dead only after its lease: a dead
// holder's lock in another container refused every command for good (a review)
t.test('a command facing a lock from elsewhere waits out its lease, then takes it over', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  await writeFile(join(dir, LOCK_FILE), `999999999 ${ELSEWHERE}`);
  const started = performance.now();
  const outcome = await within(
    // a lease past the command's 10 s
    withCaLock(dir, async () => 'took', { foreignStaleAfterMs: 11_000 }).catch((err: Error) => `refused: ${err.message}`),
    20_000,
  );
  t.equal(outcome, 'took', `taken over after the lease, past the command's own wait (${Math.round(performance.now() - started)} ms)`);
});

// two waits that ignored their deadline and polled every 10 ms for ever (a review): an empty lock
// whose time is ahead of our clock (a clock stepped back), and a takeover guard naming a live
// process that is no meshcar one
t.test('an empty lock dated in the future is taken over; a guard held by a live stranger ends the wait at its deadline', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, LOCK_FILE);
  await writeFile(lock, '');
  const ahead = new Date(Date.now() + 3_600_000);
  await utimes(lock, ahead, ahead);
  t.equal(await within(withCaLock(dir, async () => 'took', { until: performance.now() + 5_000 }), 8_000), 'took', 'an empty lock seen unchanged for 2 s is its dead maker\'s, whatever its time says');
  await writeFile(lock, '999999999');
  await writeFile(join(dir, TAKEOVER_FILE), '1');
  const outcome = await within(
    withCaLock(dir, async () => 'took', { until: performance.now() + 500 }).catch((err: Error) => `refused: ${err.message}`),
    5_000,
  );
  t.match(outcome, /^refused: .* is being changed by another meshcar process/, 'refused at its deadline');
});

// the wait out of the lease was counted from the lock's last change, which a live holder's
// heartbeat keeps making: a command facing a live holder in another container waited for good
// (a second review)
t.test('a command facing a live holder elsewhere gives up once the lease has passed since it started', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, LOCK_FILE);
  await writeFile(lock, `999999999 ${ELSEWHERE}`);
  // the holder's heartbeat, faster than the lease
  const beat = setInterval(() => {
    const now = new Date();
    void utimes(lock, now, now).catch(() => undefined);
  }, 200);
  t.teardown(() => clearInterval(beat));
  const started = performance.now();
  const outcome = await within(
    withCaLock(dir, async () => 'took', { waitMs: 300, foreignStaleAfterMs: 1_000 }).catch((err: Error) => `refused: ${err.message}`),
    12_000,
  );
  t.match(outcome, /^refused: .*pid 999999999 in another container or on another host/, `refused, the holder alive (${Math.round(performance.now() - started)} ms: the lease and two heartbeats past its start)`);
});

t.test('a dead holder\'s lock removed as the wait ends is taken, not refused', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  await writeFile(join(dir, LOCK_FILE), '999999999');
  t.equal(await withCaLock(dir, async () => 'took', { until: performance.now() - 1 }).catch((err: Error) => `refused: ${err.message}`), 'took');
});

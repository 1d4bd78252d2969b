// A CA folder's lock (src/ca/folder-lock.ts) between processes that cannot see each other's
// pids: two containers on one volume (an overlapping restart, a second replica). The lock held
// only a pid, which a waiter in another PID namespace looked up in its own: no such process
// (or one of its own), so it took a live holder's lock at once, and two servers spent one
// single-use token or made two CAs in one folder (a review, with `unshare --pid`). The lock
// now names where its pid lives; one from elsewhere is judged by its age, kept fresh by its
// holder's heartbeat.

import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCaDir } from '../helpers/ca.js';
import { pidNamespaceUnavailable } from '../helpers/mount-namespace.js';
import { LOCK_FILE, withCaLock } from '../../src/ca/folder-lock.js';

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

t.test('a lock from another PID namespace is judged by its age: fresh is waited for, untouched for 20 s is taken over', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const lock = join(dir, LOCK_FILE);
  // pid 1 is alive here and 999999999 is not: neither says anything about another namespace
  for (const pid of ['1', '999999999']) {
    await writeFile(lock, `${pid} ${ELSEWHERE}`);
    await t.rejects(withCaLock(dir, async () => undefined, { until: performance.now() + 300 }), { code: 'forbidden', message: /in another container or on another host/ }, `a fresh lock of pid ${pid} from elsewhere is waited for`);
    const old = new Date(Date.now() - 21_000);
    await utimes(lock, old, old);
    let ran = false;
    await withCaLock(dir, async () => {
      ran = true;
    });
    t.ok(ran, `pid ${pid}'s lock untouched for 21 s is taken over`);
  }
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

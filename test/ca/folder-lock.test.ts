// A CA folder's lock (src/ca/folder-lock.ts) taken over from a holder that died: however many
// waiters judge the same stale lock at once, one of them holds the folder at a time. Before
// the takeover guard, two waiters removed the stale lock in turn, the second removing the
// lock the first had just made, and both changed the folder together (a review measured lost
// rotations in 8 of 20 races, and a folder whose issuer key and certificate came from two).

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCaDir } from '../helpers/ca.js';
import { LOCK_FILE, TAKEOVER_FILE, withCaLock } from '../../src/ca/folder-lock.js';

const CONTENDER = new URL('./fixtures/lock-contender.mjs', import.meta.url).pathname;
/** No such process: what a holder killed with the lock leaves. */
const DEAD_PID = '999999999';

function runContender(dir: string, at: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONTENDER, dir, String(at)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    // a contender that ends without a word says how it ended (a clean-clone run saw two of 24
    // print nothing; alone it never has)
    child.on('exit', (code, signal) => resolve(out.trim() || `nothing printed (exit ${code}, signal ${signal})`));
  });
}

t.test('across processes: contenders started together over a stale lock hold the folder one at a time', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  const outcomes: string[] = [];
  for (let round = 0; round < 6; round++) {
    await writeFile(join(dir, LOCK_FILE), DEAD_PID);
    // long enough for four node processes to start on a busy 2-core machine
    const at = Date.now() + 600;
    outcomes.push(...(await Promise.all([0, 1, 2, 3].map(() => runContender(dir, at)))));
  }
  t.same(outcomes.filter((o) => o !== 'ok'), [], 'every contender held the folder alone (24 of them)');
  t.same((await readdir(dir)).filter((name) => name === LOCK_FILE || name === TAKEOVER_FILE || name === 'inside'), [], 'nothing is left held');
});

t.test('a takeover guard left by a waiter that died holding it is removed once old, and the lock taken', async (t) => {
  const dir = await makeCaDir();
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }));
  await writeFile(join(dir, LOCK_FILE), DEAD_PID);
  await writeFile(join(dir, TAKEOVER_FILE), DEAD_PID);
  const started = Date.now();
  let ran = false;
  await withCaLock(dir, async () => {
    ran = true;
  });
  t.ok(ran, 'the change ran');
  t.ok(Date.now() - started >= 1_900, 'a fresh guard is waited for (its holder may be removing the lock now)');
  t.notOk(existsSync(join(dir, TAKEOVER_FILE)), 'the dead guard is gone');
});

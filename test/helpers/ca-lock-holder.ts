// The CA folder's lock held by a live process other than the test's: a `ca` command under way,
// as the CA server sees it (its spends of single-use tokens wait for the lock).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCK_FILE } from '../../src/ca/folder-lock.js';

/** Holds `dir`'s lock until the function returned is called (or the test ends). */
export async function holdCaLock(t: Tap.Test, dir: string): Promise<() => Promise<void>> {
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], { stdio: 'ignore' });
  await once(holder, 'spawn');
  t.teardown(() => void holder.kill());
  await writeFile(join(dir, LOCK_FILE), String(holder.pid), { mode: 0o600 });
  return () => rm(join(dir, LOCK_FILE), { force: true });
}

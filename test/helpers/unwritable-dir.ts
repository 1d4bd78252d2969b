// Test helper: a folder whose writes can be made to fail for real, for root too, and then work
// again. A small tmpfs of its own, remounted read-only and back (the tests run as root in CI);
// where mount is not allowed, the folder's parent is swapped for a regular file and back
// (every write under it then fails with ENOTDIR). Unmounted and removed at teardown.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);

export interface UnwritableDir {
  /** A folder that does not exist yet, under the blockable place (identity.dir). */
  readonly path: string;
  /** How writes are made to fail: 'read-only tmpfs' or 'parent is a file'. */
  readonly how: string;
  /** From now on, creating or writing anything at `path` fails. */
  block(): Promise<void>;
  /** Writes work again (with the parent-file fallback, what was in the folder is gone). */
  unblock(): Promise<void>;
}

export async function unwritableDir(t: { teardown(fn: () => unknown): void }, name = 'identity'): Promise<UnwritableDir> {
  const base = await mkdtemp(join(tmpdir(), 'meshcar-unwritable-'));
  const mountPoint = join(base, 'mnt');
  await mkdir(mountPoint);
  let mounted = false;
  // unmounted before the folder is removed: never a recursive remove through a live mount
  t.teardown(async () => {
    if (mounted) await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]));
    await rm(base, { recursive: true, force: true });
  });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', mountPoint]);
    mounted = true;
    const remount = (mode: 'ro' | 'rw') => run('mount', ['-o', `remount,${mode}`, mountPoint]).then(() => undefined);
    return { path: join(mountPoint, name), how: 'read-only tmpfs', block: () => remount('ro'), unblock: () => remount('rw') };
  } catch {
    return {
      path: join(mountPoint, name),
      how: 'parent is a file',
      async block() {
        await rm(mountPoint, { recursive: true, force: true });
        await writeFile(mountPoint, 'not a folder\n');
      },
      async unblock() {
        await rm(mountPoint, { force: true });
        await mkdir(mountPoint);
      },
    };
  }
}

// Writing a file so that readers see the old content or the new, never half: a private temp
// file beside the target, fsync, rename, fsync of the folder (without it the rename may not
// survive a power loss: a spent single-use token could be accepted again). Shared by the CA's store (keys, certificates, the
// spent-token ledger) and the workload's SVID store, which must not depend on each other.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

/** writeFileAtomic's temp names: `.NAME.<12 hex digits>.tmp`. */
const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Older than this, no write is under way on a temp file any more (one takes milliseconds). */
export const STALE_TEMP_MS = 10 * 60_000;

/**
 * Removes the temp files that writers killed mid-write left in `dir` (a SIGKILL between the
 * write and the rename): they hold what was being written, a private key among them, and
 * nothing ever reads them. Only those older than STALE_TEMP_MS, so a write in flight in
 * another process is never touched. Returns the names removed.
 */
export async function removeStaleTemps(dir: string, now: number = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!TEMP_NAME.test(name)) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile() || now - info.mtimeMs < STALE_TEMP_MS) continue;
    if (await unlink(file).then(() => true, () => false)) removed.push(name);
  }
  return removed;
}

/** Writes `content` to `target` atomically with the given mode (applied explicitly, not via umask). */
export async function writeFileAtomic(target: string, content: string, mode: number): Promise<void> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx' (O_EXCL) never follows a planted symlink or reuses someone else's file
  const handle = await open(temp, 'wx', mode).catch((err: unknown) => {
    throw errorNaming(err, target);
  });
  try {
    await handle.chmod(mode);
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw errorNaming(err, target);
  }
  await handle.close();
  await rename(temp, target).catch(async (err: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw err;
  });
  await fsyncDirectory(path.dirname(target));
}

/**
 * The error names `target`, the file the caller asked for (as a rename's destination, which
 * pathProblem reads first), not the temp file beside it, nor nothing: a FileHandle's errors
 * carry no path, and a full disk (ENOSPC) in the middle of a write came out of `meshcar ca
 * init` as a stack trace, not one line.
 */
export function errorNaming(err: unknown, target: string): unknown {
  if (typeof err === 'object' && err !== null && 'code' in err) (err as { dest?: string }).dest ??= target;
  return err;
}

/** Makes a folder's entries (a rename, a new link) durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

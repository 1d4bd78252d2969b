// Writing a file so that readers see the old content or the new, never half: a private temp
// file beside the target, fsync, rename. Shared by the CA's store (keys, certificates, the
// spent-token ledger) and the workload's SVID store, which must not depend on each other.

import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Writes `content` to `target` atomically with the given mode (applied explicitly, not via umask). */
export async function writeFileAtomic(target: string, content: string, mode: number): Promise<void> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx' (O_EXCL) never follows a planted symlink or reuses someone else's file
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  await rename(temp, target).catch(async (err: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw err;
  });
}

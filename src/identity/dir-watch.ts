// A watch on a directory that survives the directory being replaced. fs.watch follows the
// inode: after `mv certs certs.old` and a new `certs` written at the same path, a plain watch
// keeps reporting the old folder and never sees the new files. So the parent is watched as
// well, and on every event the path is stat'ed again: a new inode (or the folder coming back
// after it was gone) re-arms the watch on what the path names now.

import { statSync, watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';

function inodeNow(dir: string): number | undefined {
  try {
    return statSync(dir).ino;
  } catch {
    return undefined;
  }
}

interface Armed {
  readonly dir: string;
  watcher: FSWatcher | undefined;
  ino: number | undefined;
}

export class ReplaceableDirWatch {
  private readonly armed: Armed[];
  private readonly parents: FSWatcher[] = [];
  private closed = false;
  /** One re-arm at a time; events during it ask for one more. */
  private rearming: Promise<void> | undefined;
  private again = false;

  /** Calls `changed` on any event in `dirs` (any name: writers rename temporaries and links) or on their replacement. */
  constructor(
    dirs: Iterable<string>,
    private readonly changed: () => void,
    private readonly logger: Logger,
  ) {
    this.armed = [...dirs].map((dir) => ({ dir, watcher: undefined, ino: undefined }));
    for (const entry of this.armed) this.arm(entry, inodeNow(entry.dir));
    for (const parent of new Set(this.armed.map((a) => path.dirname(a.dir)))) {
      if (this.armed.some((a) => a.dir === parent)) continue; // the folder itself is its own parent (/)
      try {
        // only our folders' names: the parent may be busy (a log file written beside certs/)
        const ours = new Set(this.armed.filter((a) => path.dirname(a.dir) === parent).map((a) => path.basename(a.dir)));
        const onEvent = (_type: string, name: string | Buffer | null) => (name === null || ours.has(name.toString()) ? this.event() : undefined);
        this.parents.push(watch(parent, onEvent).on('error', (err) => logger.warn({ dir: parent }, `stopped watching ${parent}: ${describeError(err)}`)));
      } catch (err) {
        // without it a replaced folder is only noticed at its next event; still better than failing to start
        logger.warn({ dir: parent }, `cannot watch ${parent} for a replaced identity folder: ${describeError(err)}`);
      }
    }
  }

  private arm(entry: Armed, ino: number | undefined): void {
    entry.watcher?.close();
    entry.watcher = undefined;
    entry.ino = ino;
    try {
      entry.watcher = watch(entry.dir, () => this.event());
      // a deleted folder ends its watch: the parent's watch sees its return
      entry.watcher.on('error', () => this.event());
    } catch {
      // the folder is gone for now (mid-replacement): the parent's watch sees it come back
    }
  }

  private event(): void {
    if (this.closed) return;
    this.changed();
    void this.rearm();
  }

  /** Re-watches each folder whose path now names another inode (or names one again). */
  private rearm(): Promise<void> {
    if (this.rearming) {
      this.again = true;
      return this.rearming;
    }
    this.rearming = (async () => {
      for (const entry of this.armed) {
        const ino = await stat(entry.dir).then((s) => s.ino, () => undefined);
        if (this.closed) return;
        if (ino !== entry.ino || (ino !== undefined && entry.watcher === undefined)) {
          if (entry.ino !== undefined && ino !== undefined) this.logger.info({ dir: entry.dir }, `${entry.dir} was replaced; watching the new folder`);
          this.arm(entry, ino);
          // files may have landed in the new folder before its watch began
          if (ino !== undefined) this.changed();
        }
      }
    })().finally(() => {
      this.rearming = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.rearm();
      }
    });
    return this.rearming;
  }

  close(): void {
    this.closed = true;
    for (const entry of this.armed) entry.watcher?.close();
    for (const parent of this.parents) parent.close();
  }
}

// `ca init` makes a CA in a folder of its own. It tightens its --dir to 0700 and, with --force,
// removes the files of a CA there: on a folder that was something else (`--dir /tmp`, `--dir .`
// in a project, a home folder) it took every other user's access to /tmp away (1777 became
// 0700, without a word) and put the keys among unrelated files. A folder that holds files and
// none of a CA's is refused, --force or not: --force replaces a CA, not whatever is there.
// The folder is made, and made 0700, only where its judged path leads (makePrivateCaFolder).

import { readdir } from 'node:fs/promises';
import { MeshcarError } from '../errors.js';
import { chmodPrivate, makeJudgedFolders } from '../path-trust.js';
import { otherWriters, pathProblem } from '../user-paths.js';
import { refuseSwappableCaFolder } from './ca-state.js';
import { shellWord } from '../shell-word.js';
import { LOCK_FILE, TAKEOVER_FILE } from './folder-lock.js';

/** A mounted volume's root has lost+found; .lock, .lock.takeover and .NAME.<hex>.tmp are ca init's own (an init cut short). */
const IGNORED = (name: string) => name === 'lost+found' || name === LOCK_FILE || name === TAKEOVER_FILE || /^\..+\.[0-9a-f]+\.tmp$/.test(name);

/** The most names a refusal lists: a home folder holds hundreds. */
const NAMES_SHOWN = 3;

/** Throws when `dir` exists, holds entries, and none of them is one of `caFiles`. A missing folder is made by init. */
export async function refuseForeignFolder(dir: string, caFiles: readonly string[]): Promise<void> {
  const entries = await readdir(dir).catch(() => undefined);
  if (entries === undefined) return;
  const others = entries.filter((name) => !IGNORED(name)).sort();
  if (others.length === 0 || others.some((name) => caFiles.includes(name))) return;
  const shown = others.slice(0, NAMES_SHOWN).join(', ') + (others.length > NAMES_SHOWN ? ` and ${others.length - NAMES_SHOWN} more` : '');
  throw new MeshcarError('bad_path', `${dir}: holds other files (${shown}) and no CA; a CA gets a folder of its own, which ca init makes private (mode 0700): give a new or empty folder, e.g. "meshcar ca init --dir ${shellWord(`${dir.replace(/\/+$/, '')}/ca`)} ..."`);
}

/**
 * Makes `dir` (and the folders above it that are missing) and makes it 0700, through the path
 * judged whole: a recursive mkdir and a chmod walked the path again after refuseSwappableCaFolder
 * had judged it, and another user who made a missing part meanwhile, holding a link to a folder
 * of their choosing, had root make that folder 0700 (a review: 2 of 76 races; /tmp or / as
 * easily). The chmod goes through a handle opened on the real path without following a link,
 * once it is seen to be a folder of ours or root's.
 */
export async function makePrivateCaFolder(dir: string, beforeMkdir?: (folder: string) => void | Promise<void>): Promise<void> {
  const made = await makeJudgedFolders(dir, { mode: 0o700, beforeMkdir });
  if (made.unsafe !== undefined || !made.complete) {
    // in the words the judgement before gave (a folder above another user's, or may write)
    await refuseSwappableCaFolder(dir);
    throw new MeshcarError('forbidden', `the CA folder ${dir} changed while it was made; run the command again`);
  }
  try {
    await chmodPrivate(made.real, (info) => {
      const others = otherWriters(info, undefined, true);
      return others !== undefined && 'owner' in others ? new MeshcarError('forbidden', `the CA folder ${dir} is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid}); give a folder of your own`) : undefined;
    });
  } catch (err) {
    // a handle's error names no path (EROFS, EPERM from fchmod): said of the folder, in one line
    // (a re-review: a stack trace and exit 70 where the path's chmod had said it in words)
    throw pathProblem(Object.assign(err as NodeJS.ErrnoException, { path: (err as NodeJS.ErrnoException).path ?? dir })) ?? err;
  }
}

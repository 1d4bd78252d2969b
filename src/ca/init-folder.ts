// `ca init` makes a CA in a folder of its own. It tightens its --dir to 0700 and, with --force,
// removes the files of a CA there: on a folder that was something else (`--dir /tmp`, `--dir .`
// in a project, a home folder) it took every other user's access to /tmp away (1777 became
// 0700, without a word) and put the keys among unrelated files. A folder that holds files and
// none of a CA's is refused, --force or not: --force replaces a CA, not whatever is there.

import { readdir } from 'node:fs/promises';
import { MeshcarError } from '../errors.js';
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

// Paths a person typed (a CA folder, `--out`): checked before any work is done, and a
// file-system error about a path put in one line, `<path>: <what>; <fix>` (code bad_path),
// instead of a stack trace. Checking first matters where work leaves a trace: `ca issue` records
// every leaf it signs in the CA folder, so it must not sign for an --out it cannot write.

import { constants, existsSync, realpathSync, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { MeshcarError } from './errors.js';

const PROBLEMS: Record<string, [what: string, fix: string]> = {
  ENOENT: ['does not exist', 'create it first, or correct the path'],
  ENOTDIR: ['a part of the path is a file, not a folder', 'correct the path'],
  EEXIST: ['already exists', 'remove it, or choose another path'],
  EISDIR: ['is a folder, not a file', 'name a file'],
  EACCES: ['permission denied', 'run meshcar as a user who may use it, or change its permissions'],
  EPERM: ['operation not permitted', 'run meshcar as a user who may use it, or change its permissions'],
  EROFS: ['is on a read-only file system', 'choose a writable place'],
  ENOSPC: ['no space left on the device', 'free some space'],
  ELOOP: ['too many symbolic links', 'correct the path'],
  // a part of the path over 255 bytes, or the whole over 4096: the kernel refuses it before
  // looking; without an entry here it was a stack trace and exit 70
  ENAMETOOLONG: ['the name is too long (at most 255 bytes a part, 4096 in all)', 'use a shorter path'],
};

/**
 * For a path that does not exist: a hint when a part of it is `~`, which only a shell expands,
 * and only at the start of a word (`--config=~/x.yaml` and a config's `cert: ~/svid.crt` keep
 * it); '' otherwise.
 */
export function tildeHint(path: string): string {
  return /(?:^|\/)~(?:\/|$)/.test(path) ? '; ~ is not expanded here (only a shell does, at the start of a word): write the home folder out' : '';
}

/** A file-system error's what and fix (`permission denied; run meshcar as ...`), or undefined for an error without an entry here. */
export function fileErrorWords(err: unknown): string | undefined {
  const problem = PROBLEMS[(err as NodeJS.ErrnoException | undefined)?.code ?? ''];
  return problem && `${problem[0]}; ${problem[1]}`;
}

/** A file-system error (it names a path) in one line; undefined for any other error. */
export function pathProblem(err: unknown): MeshcarError | undefined {
  const { code, path, dest } = (err ?? {}) as NodeJS.ErrnoException & { dest?: string };
  const problem = code === undefined ? undefined : PROBLEMS[code];
  // a rename names its temporary source first: the path the person gave is its destination
  const named = dest ?? path;
  if (!problem || named === undefined) return undefined;
  return new MeshcarError('bad_path', `${named}: ${problem[0]}; ${problem[1]}`, { cause: err });
}

function badPath(path: string, what: string, fix: string, cause?: unknown): MeshcarError {
  return new MeshcarError('bad_path', `${path}: ${what}; ${fix}`, cause === undefined ? undefined : { cause });
}

/**
 * A path to write to whose first part is `~` (or `~user`), which only a shell expands, and only
 * at the start of a word: `--dir=~/ca` made a folder named ~ in the working directory and said
 * "created CA ... in ~/ca", the keys where nobody looks (and a later `rm -rf ~` meant for it
 * takes the home folder).
 */
export function refuseUnexpandedTilde(path: string): void {
  const tilde = /^~[A-Za-z0-9._-]*(?:\/|$)/.exec(path);
  if (tilde) throw badPath(path, `starts with ${tilde[0].replace(/\/$/, '')}, which only a shell expands, at the start of a word (not after --option=)`, 'write the home folder out, or put a space between the option and the path');
}

/**
 * /proc, /sys and /dev (but /dev/shm, a tmpfs) are the kernel's: nothing meshcar writes belongs
 * there, and Node 20's recursive mkdir loops forever on /proc (it never gives up on the
 * EEXIST/ENOENT it gets).
 * Two places are judged, and either under them refuses: the entry a writer replaces (the last
 * part as given, in its folder with the links followed: a rename replaces a link there instead
 * of following it), and where the links lead (a link to /proc is /proc). The first alone
 * catches `--out /dev/stdout` with stdout redirected to a file: that link leads to the file,
 * and the token file was renamed over the host's /dev/stdout link itself.
 */
export function refuseKernelPath(path: string): void {
  const replaced = join(realPathOfExisting(dirname(path)), basename(path));
  // (the path as typed first: its own top is the one to name)
  for (const judged of [resolve(path), replaced, realPathOfExisting(path)]) {
    const top = /^\/(proc|sys|dev)(\/|$)/.exec(judged);
    // /dev/shm is a tmpfs of its own, writable, where keys are often kept on purpose
    if (top && !/^\/dev\/shm(\/|$)/.test(judged)) throw badPath(path, `is under /${top[1]}, a file system of the kernel`, 'choose another path');
  }
}

/**
 * The absolute path with its deepest existing part's links followed, as the kernel follows them
 * (`link/..` is the link's target's parent, not the folder holding the link, which path.resolve
 * and fs.realpathSync would say); a CLI path, read synchronously.
 */
export function realPathOfExisting(path: string): string {
  let existing = isAbsolute(path) ? path : `${process.cwd()}/${path}`;
  let rest = '';
  while (!existsSync(existing)) {
    const parent = dirname(existing);
    if (parent === existing) return resolve(path);
    rest = rest === '' ? basename(existing) : `${basename(existing)}/${rest}`;
    existing = parent;
  }
  try {
    const real = realpathSync.native(existing);
    // the missing parts will be folders, not links: their `..` is the lexical one
    return rest === '' ? real : resolve(real, rest);
  } catch {
    // a link the kernel cannot name a path for (/dev/stdout to a pipe: "pipe:[1234]"): as given
    return resolve(path);
  }
}

/** `dir` exists and is a folder; `missing` and `notFolder` are the fixes when it is not. */
export async function requireFolder(dir: string, missing: string, notFolder = 'give a folder'): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    // (the cause names the path: ca serve tells a folder the config's folder holds, config-folder.ts)
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw badPath(dir, 'does not exist', `${missing}${tildeHint(dir)}`, err);
    throw pathProblem(err) ?? err;
  }
  if (!info.isDirectory()) throw badPath(dir, 'is a file, not a folder', notFolder);
}

/** A folder to write files into: judged and made where missing by `makeJudged` (with its parents, mode 0700), and writable. */
export async function prepareOutFolder(dir: string, makeJudged: (dir: string) => Promise<void>): Promise<void> {
  refuseUnexpandedTilde(dir);
  refuseKernelPath(dir);
  try {
    const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info && !info.isDirectory()) throw badPath(dir, 'is a file, not a folder', 'give a folder (it is made when missing), or remove the file');
    // an existing folder too: another user's, or one their link leads to, is theirs to change
    await makeJudged(dir);
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw pathProblem(err) ?? err;
  }
}

/** A name's most bytes (255) less what the temp file beside it adds: `.NAME.<12 hex digits>.tmp`. */
const MAX_OUT_NAME_BYTES = 255 - '..123456789abc.tmp'.length;

/** A file to write (replaced if present): not a folder, in an existing folder we may write to. */
export async function prepareOutFile(file: string): Promise<void> {
  refuseUnexpandedTilde(file);
  refuseKernelPath(file);
  // written through a temp file beside it (atomic-file.ts), whose name is longer: the kernel's
  // refusal of that one would name the temp file, not the path typed
  if (Buffer.byteLength(basename(file)) > MAX_OUT_NAME_BYTES) throw badPath(file, `the file name is too long (at most ${MAX_OUT_NAME_BYTES} bytes here)`, 'use a shorter name');
  const info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) throw badPath(file, 'is a folder, not a file', `name a file, e.g. ${file.replace(/\/+$/, '')}/NAME`);
  const folder = dirname(file);
  await requireFolder(folder, 'create the folder first, or correct the path');
  try {
    await access(folder, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw pathProblem(err) ?? err;
  }
}

/**
 * Who besides the user running meshcar could change a folder of keys: its owner, when that is
 * another user, or its group or everyone, when the mode lets them write; undefined when no one.
 * `rootTrusted`: root as the owner is no other writer (root may write anything of ours anyway).
 */
export type OtherWriters = { readonly owner: number; readonly uid: number } | { readonly who: 'group and others' | 'its group' | 'others'; readonly mode: string };

export function otherWriters(info: Stats, uid = process.getuid?.(), rootTrusted = false): OtherWriters | undefined {
  if (uid !== undefined && info.uid !== uid && !(rootTrusted && info.uid === 0)) return { owner: info.uid, uid };
  if ((info.mode & 0o022) === 0) return undefined;
  const who = (info.mode & 0o020) !== 0 ? ((info.mode & 0o002) !== 0 ? 'group and others' : 'its group') : 'others';
  return { who, mode: (info.mode & 0o7777).toString(8).padStart(4, '0') };
}

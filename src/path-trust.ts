// Who besides the user running meshcar could change where a path leads: resolved one part at a
// time as the kernel does, each folder passed judged by its owner and mode (ssh's StrictModes
// asks the same of a home folder). For folders that hold keys, where a swapped link would have
// the sidecar serve, write into or prune a folder it was not meant for (identity/store-folder.ts).

import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readlink, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { otherWriters } from './user-paths.js';
import { isVolumeRootReachedOnlyHere } from './volume-root.js';

/** Where a path leads, judged on the way (judgePath). */
export interface PathJudgement {
  /** The path with every link resolved; a missing tail as given (folders to be made). */
  readonly real: string;
  /** Why another user could change where it leads, or undefined. */
  readonly unsafe: string | undefined;
  /** Whether it all exists: a tail made later must be judged again once made (another user may make it first). */
  readonly complete: boolean;
  /** The first missing part, in a real folder judged safe (makeJudgedFolders makes exactly it). */
  readonly missing?: string;
}

/** As the kernel: more links than this on one path is ELOOP. */
const MAX_LINKS = 40;

/**
 * Resolves `path` one part at a time, as the kernel does, and judges every folder it passes
 * through, for the user `uid` (the running one): one another user owns, or that its group or
 * others may write, lets them rename what is in it and so choose where the path leads (ssh's
 * StrictModes asks the same of a home folder). Every link is judged where it lies, including
 * one reached through another link, which neither the path as given nor its real path shows.
 * Passed: a folder its group may write when that group is root's and the user runs in it
 * (rootGroupOnly: OpenShift); a sticky one (/tmp: only an entry's owner may
 * rename it) and the root of a mounted file system (a Kubernetes emptyDir is world-writable by
 * design, and only the containers that mount it reach it; not a bind mount of a folder still
 * reached by another path: volume-root.ts) when the entry in it is ours or root's as it is now.
 */
export async function judgePath(path: string, uid = process.getuid?.()): Promise<PathJudgement> {
  let rest = resolve(path).split('/').filter((part) => part !== '');
  let folder = '/';
  let links = 0;
  while (rest.length > 0) {
    const name = rest.shift() as string;
    if (name === '.') continue;
    // the folder is a real one here: its `..` is its parent
    if (name === '..') {
      folder = dirname(folder);
      continue;
    }
    const entryPath = join(folder, name);
    const entry = await lstat(entryPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    const why = uid === undefined ? undefined : await othersMayRename(folder, entryPath, entry, uid);
    if (why !== undefined || entry === undefined) return { real: join(entryPath, ...rest), unsafe: why, complete: false, missing: entry === undefined ? entryPath : undefined };
    if (!entry.isSymbolicLink()) {
      folder = entryPath;
      continue;
    }
    // a loop: the kernel's own error, as opening the path would give it (no one else's doing)
    if (++links > MAX_LINKS) throw Object.assign(new Error(`ELOOP: too many symbolic links encountered, '${path}'`), { code: 'ELOOP', path });
    const target = await readlink(entryPath);
    if (target.startsWith('/')) folder = '/';
    rest = [...target.split('/').filter((part) => part !== ''), ...rest];
  }
  return { real: folder, unsafe: undefined, complete: true };
}

/** Turns of the loop below beyond one per part of the path: links on the way add parts. */
const MADE_MARGIN = MAX_LINKS + 8;

/**
 * Makes the missing folders of `path` (mode `mode`, then umask) one at a time, each where the
 * judged path leads and without following anything in its place, and returns the path judged
 * whole. A recursive mkdir walked the path again after the judgement: another user who made a
 * missing part meanwhile (theirs, in a sticky folder), holding a link to a folder of their
 * choosing, had root make folders there, and `ca init`'s chmod then made that folder 0700 (a
 * review: the victim folder 0700 in 2 of 76 races). Here a part someone else made first is
 * judged as it stands (theirs: refused) before anything is made in it, and a plain mkdir
 * fails on a link rather than follow it. `unsafe` says why it was not made. `beforeMkdir`: a
 * test's moment between the judgement and a mkdir, where another user's move would come.
 */
export async function makeJudgedFolders(path: string, options: { mode: number; uid?: number; beforeMkdir?: (folder: string) => void | Promise<void> }): Promise<PathJudgement> {
  const uid = options.uid ?? process.getuid?.();
  // each turn makes a part or finds it made (then judged as it stands): bounded by the parts
  const turns = resolve(path).split('/').length + MADE_MARGIN;
  for (let turn = 0; ; turn++) {
    const judged = await judgePath(path, uid);
    if (judged.unsafe !== undefined || judged.complete || judged.missing === undefined || turn >= turns) return judged;
    // exactly the part judgePath found missing, in its real folder: walking the path again to
    // find it followed a link another user put at that part meanwhile (a re-review: root made
    // victim/next through sticky/M -> victim in 256 of 3,000 races)
    await options.beforeMkdir?.(judged.missing);
    await mkdir(judged.missing, { mode: options.mode }).catch((err: NodeJS.ErrnoException) => {
      // made by someone meanwhile: judged as it stands on the next turn
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/**
 * Makes the folder at `real` exactly 0700 (mkdir's mode is narrowed by the umask, and an existing
 * folder's is left as it was) through a handle opened on it without following a link there, once
 * `ownerProblem` passes what the handle shows: by path, a chmod followed a link another user put
 * in the folder's place to a folder of their choosing.
 */
export async function chmodPrivate(real: string, ownerProblem: (info: Stats) => Error | undefined): Promise<void> {
  const handle = await open(real, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const problem = ownerProblem(await handle.stat());
    if (problem !== undefined) throw problem;
    await handle.chmod(0o700);
  } finally {
    await handle.close();
  }
}

/** Why another user could rename `entryPath` (or make it, when missing) in `folder`, or undefined. */
async function othersMayRename(folder: string, entryPath: string, entry: Stats | undefined, uid: number): Promise<string | undefined> {
  const info = await stat(folder);
  const writers = otherWriters(info, uid, true);
  if (writers === undefined) return undefined;
  if ('owner' in writers) return `${folder}, a folder above it, is owned by uid ${writers.owner}, not by the user running meshcar (uid ${uid}) or root`;
  if ((info.mode & 0o002) === 0 && info.gid === 0 && rootGroupOnly(uid)) return undefined;
  const { who, mode } = writers;
  const sticky = (info.mode & 0o1000) !== 0;
  if (!sticky && !(await isVolumeRootReachedOnlyHere(folder, info))) return `${folder}, a folder above it, is writable by ${who} (mode ${mode}, no sticky bit)`;
  // as it is now: a link another user made there chose the way (a missing entry is judged again once made)
  if (entry !== undefined && entry.uid !== uid && entry.uid !== 0) return `${entryPath} is owned by uid ${entry.uid}, in ${folder}, which ${who} may write (mode ${mode})`;
  return undefined;
}

/**
 * Root's group may write as root: only for a user that is not root but runs in group 0, as
 * OpenShift runs its arbitrary users (its images' folders are root:0, g+w). Not otherwise: a
 * container run as `--user N` is in group 0 too, and a folder's group bits are an ACL's mask
 * when it has one (a named user's write entry shows as group write; ACLs are not read here).
 * Only for the running user: judging for another (`meshcar doctor` as root, for the sidecar's
 * user) this process's group says nothing of that user's, and the folder passed doctor while
 * the sidecar, in its own group, refused it (a review).
 */
function rootGroupOnly(uid: number): boolean {
  return uid !== 0 && uid === process.getuid?.() && process.getgid?.() === 0;
}

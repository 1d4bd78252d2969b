// Whether the identity store's folder and files may hold what another user wrote: where
// identity.dir really leads and who could swap it on the way (path-trust.ts), each file judged on
// the file opened, and folders made private through a handle on them. Used by the store
// (disk-store.ts) and by `meshcar doctor`, which must judge the folder as the sidecar will.

import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, opendir, rm, rmdir } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { join } from 'node:path';
import { otherWriters } from '../user-paths.js';
import { chmodPrivate, judgePath, type PathJudgement } from '../path-trust.js';

/**
 * Where the store folder really is (links resolved), why another user could swap it (see
 * DiskStore.place), and whether it exists, for the user `uid` (judgePath).
 */
export async function placeStore(dir: string, uid = process.getuid?.()): Promise<PathJudgement> {
  const judged = await judgePath(dir, uid);
  if (judged.unsafe === undefined) return judged;
  return { ...judged, unsafe: `${judged.unsafe}: another user could swap it for a folder of their choosing (keep identity.dir under folders only its user or root may write)` };
}

/**
 * Why a file the store opened may hold what someone else wrote, judged on the opened file itself
 * (undefined: ours, or root's, and writable by its owner only). The folder is checked by path
 * first, but the path is opened again for each file: whoever may write a folder above
 * identity.dir can swap it for a link to a folder of their own between the check and the open,
 * and their set was served (a review's `nobody` loop won 2 restarts of 8). Files they make are
 * theirs, whatever path leads to them. `uid`: the user the store is for (the running one).
 */
export function notOurs(stats: Stats, uid = process.getuid?.()): string | undefined {
  // root's file is taken as ours (`sudo meshcar ca issue --out` made it)
  const others = otherWriters(stats, uid, true);
  if (others === undefined) return undefined;
  if ('owner' in others) return `is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid}) or root`;
  return `is writable by ${others.who} (mode ${others.mode})`;
}

/**
 * Makes a folder this store writes into exactly 0700, through a handle on the folder itself, and
 * only a folder of this user's: by path, a chmod followed a link planted in its place (see
 * notOurs) to whatever folder of ours it named. A folder others could write that holds anything
 * is not taken private (its mode is put back, and the save refused): made 0700, whatever another
 * user had put in it while it was open passed every later check, root's files they moved in
 * too (a re-review: a set planted so, kept by a start that then failed, was served by the next).
 */
export async function makePrivate(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  let remade = false;
  try {
    const stats = await handle.stat();
    const uid = process.getuid?.();
    if (uid !== undefined && stats.uid !== uid) throw new Error(`${dir} is owned by uid ${stats.uid}, not by the user running meshcar (uid ${uid}): not saving keys into it (chown it, or set another identity.dir)`);
    const others = otherWriters(stats, uid, true);
    const openTo = others !== undefined && 'who' in others ? others : undefined;
    // an open folder is replaced by a new private one where it can be: rmdir takes only an empty
    // folder, in one step, so nothing another user slips in is ever made private with it (a
    // chmod, then a second look, left a window a process killed from outside could leave their
    // files in: the third re-review); judgePath made sure no other user may create the name
    // again in between (or, in a sticky folder or at a volume's root, mkdir finds it taken)
    if (openTo !== undefined) remade = await remadePrivate(dir, openTo);
    if (remade) return;
    // else (a volume's root, a parent we may not write): an open folder's emptiness is asked before the chmod and again after it, one entry each
    // time: a listing took as long as the folder's other users made it (700,000 entries), and a
    // process that died in it left their files in a private folder (a re-review)
    if (openTo !== undefined && !(await isEmpty(dir))) throw notTakenOver(dir, openTo);
    // the mode mkdir gave is narrowed by the umask; an existing folder may be wider than we want
    await handle.chmod(0o700);
    if (openTo !== undefined && !(await isEmpty(dir).catch(() => false))) {
      await handle.chmod(stats.mode & 0o7777);
      throw notTakenOver(dir, openTo);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Replaces the open folder `dir` with a new 0700 one: true when done; false when it cannot be
 * removed as such (a mount point, a parent we may not write: the caller makes it private in
 * place); throws when it is not empty, or when the name is taken again before it is made.
 */
async function remadePrivate(dir: string, openTo: { who: string; mode: string }): Promise<boolean> {
  try {
    await rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw notTakenOver(dir, openTo);
    return false;
  }
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${dir} was made again by someone else while it was replaced by a private folder (${err.code ?? describeError(err)}): not saving keys into it`);
  });
  // exactly 0700 (the umask narrows what mkdir gave), through a handle on the folder made
  await chmodPrivate(dir, (info) => (info.uid !== process.getuid?.() ? new Error(`${dir} changed while it was replaced by a private folder: not saving keys into it`) : undefined));
  return true;
}

/** Whether `dir` holds no entry, from one read of it (whatever it holds, the same cost). */
export async function isEmpty(dir: string): Promise<boolean> {
  const listing = await opendir(dir);
  try {
    return (await listing.read()) === null;
  } finally {
    await listing.close().catch(() => undefined);
  }
}

function notTakenOver(dir: string, others: { who: string; mode: string }): Error {
  return new Error(`${dir} is writable by ${others.who} (mode ${others.mode}) and is not empty: anyone who could write it could have put what it holds there (root's files too, moved in), so it is not taken over: remove what is in it (a new SVID is requested), then start again`);
}


/** Writes (exclusively, 0600) and removes a file in `dir`: throws as a save there would (EACCES, EROFS, ENOSPC, ...). */
export async function tryWriting(dir: string): Promise<void> {
  const probe = join(dir, `.write-check-${randomBytes(6).toString('hex')}`);
  const handle = await open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile('x');
    await handle.sync();
  } finally {
    await handle.close();
    await rm(probe, { force: true });
  }
}

/**
 * An entry of `dir` that another user owns (a link, a file or a folder: lstat's owner), named
 * with why, or undefined. A folder left open to others (0777) got a generation and a `current`
 * planted by another user; the first save made the folder 0700 and kept them (a review: their
 * set became the fallback, served once ours expired with the CA away, and the prune's `rm -r`
 * of their folders, swapped under it, deleted files elsewhere). Root's entries are ours, as in
 * notOurs. Once the folder is private, only we (and root) add entries: checked per save.
 */
export async function foreignEntry(dir: string, uid = process.getuid?.()): Promise<string | undefined> {
  if (uid === undefined) return undefined;
  const foreign: string[] = [];
  // walked, and left at the sixth: a folder of 700,000 such entries held every name and took
  // 54 s of lstat calls at each start, then ran out of heap (a re-review)
  const listing = await opendir(dir);
  try {
    for await (const entry of listing) {
      const info = await lstat(join(dir, entry.name)).catch(() => undefined);
      if (info !== undefined && !ownedByUsOrRoot(info, uid)) foreign.push(`${entry.name} (uid ${info.uid})`);
      if (foreign.length > 5) break;
    }
  } finally {
    await listing.close().catch(() => undefined);
  }
  if (foreign.length === 0) return undefined;
  // several (up to five), so they are removed in one go rather than one restart each
  const named = `${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ' and more' : ''}`;
  return `${dir} holds ${named}, owned by another user than the one running meshcar (uid ${uid}) or root`;
}

/** Whether `entry` is a real folder (not a link) of ours or root's that only its owner may write: a generation load() may read. */
export async function isOurFolder(entry: string, uid = process.getuid?.()): Promise<boolean> {
  const info = await lstat(entry).catch(() => undefined);
  return info !== undefined && info.isDirectory() && otherWriters(info, uid, true) === undefined;
}

/** Whether an entry (lstat: a link's own owner) is ours or root's, whatever its mode (a link's is 0777). */
export function ownedByUsOrRoot(info: Stats, uid = process.getuid?.()): boolean {
  return info.uid === uid || info.uid === 0;
}

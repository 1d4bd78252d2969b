// doctor's look at identity.dir itself, beside the SVID in it: what the sidecar's DiskStore will
// do with the folder. A folder others can write makes it pass the stored SVID over (it may have
// been planted) and spend the join token instead; a folder it cannot create or write makes it
// spend the token on an SVID it cannot keep, so the next start needs another. Reading the SVID
// files says neither: they read fine through a group-writable folder. Nor do they say that a
// folder above it lets another user swap it (the sidecar then neither uses nor saves an SVID
// there), or that a file in it is another user's (passed over, as a set they may have planted).

import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError } from '../errors.js';
import { otherWriters } from '../user-paths.js';
import { STORE_FILES } from '../identity/disk-store.js';
import { foreignEntry, notOurs, placeStore } from '../identity/store-folder.js';
import { join } from 'node:path';
import { shellWord } from '../shell-word.js';

export interface DirProblem {
  readonly message: string;
  readonly fix: string;
  /**
   * True when the sidecar will not use a stored SVID from this folder but can keep the one it
   * gets with its token (it makes an empty folder 0700): a warning, the token check says if it can.
   */
  readonly refusesStored: boolean;
  /** True when the sidecar will neither use a stored SVID nor keep one: its token is needed at every start. */
  readonly needsToken?: boolean;
}

/** The nearest folder that exists on the way up from `path` (the one mkdir -p would write in), or what stands in its way. */
async function nearestExisting(path: string): Promise<{ path: string; isDirectory: boolean } | undefined> {
  let current = path;
  // bounded by the path's depth: dirname of the root is the root
  for (let depth = 0; depth < 256; depth++) {
    const info = await stat(current).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? undefined : err));
    if (info instanceof Error) return { path: current, isDirectory: false };
    if (info) return { path: current, isDirectory: info.isDirectory() };
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
  return undefined;
}

/** The user identity.dir is judged for: its owner, or a missing one's folder's (taken to run the sidecar). */
async function judgedUid(dir: string): Promise<number | undefined> {
  const found = await nearestExisting(dir);
  return found?.isDirectory ? (await stat(found.path).catch(() => undefined))?.uid : undefined;
}

/**
 * Said after the identity line when the folder was judged for a user other than doctor's and
 * root: the verdict holds for a sidecar run as that user only. Run as another (root too), the
 * sidecar refuses a folder that user owns (a review: doctor said "no SVID yet: the sidecar will
 * ask the CA" of a 0700 folder another user had made at root's identity.dir, and `run` as root
 * was refused). Not a warning: root running doctor for a service user's sidecar is the usual case.
 */
export async function judgedForAnotherUser(dir: string): Promise<string | undefined> {
  const uid = await judgedUid(dir);
  const me = process.getuid?.();
  if (uid === undefined || me === undefined || uid === me || uid === 0) return undefined;
  return ` (judged for uid ${uid}, who owns ${(await stat(dir).then(() => true, () => false)) ? 'it' : 'the folder it would be made in'}, as the user the sidecar runs as; a sidecar run as another user, root too, neither uses nor saves an SVID there)`;
}

/** Why the sidecar cannot keep (or will not reuse) an SVID in `dir`, or undefined when it can. */
export async function identityDirProblem(dir: string): Promise<DirProblem | undefined> {
  const found = await nearestExisting(dir);
  if (!found) return undefined;
  const missing = found.path !== dir;
  if (!found.isDirectory) {
    const what = missing ? `identity.dir ${dir} cannot be created: ${found.path} is not a folder` : `identity.dir ${dir} is not a folder`;
    return { message: `${what}, so the sidecar cannot store an SVID: each start spends the join token again`, fix: 'point identity.dir at a folder (or a path the sidecar can create one at)', refusesStored: false };
  }
  try {
    // write to add its files, search (x) to reach them; asked of the user it is judged for (its
    // owner) when that is not doctor's: root's access() passed a 0500 folder its owner could not
    // write, under a line saying it was judged for that owner (a re-review)
    const judged = await judgedUid(found.path);
    const me = process.getuid?.();
    // root's own access() is right for root (a read-only file system too), and so is doctor's
    // for its own user
    if (judged !== undefined && me !== undefined && judged !== me && judged !== 0) {
      const mode = (await stat(found.path)).mode;
      if ((mode & 0o300) !== 0o300) throw new Error(`its owner, uid ${judged}, may not write it (mode ${(mode & 0o7777).toString(8).padStart(4, '0')})`);
    } else {
      await access(found.path, constants.W_OK | constants.X_OK);
    }
  } catch (err) {
    const what = missing ? `identity.dir ${dir} cannot be created: ${found.path} is not writable` : `identity.dir ${dir} is not writable`;
    return { message: `${what} (${describeError(err)}), so the sidecar cannot store an SVID: each start spends the join token again`, fix: `let the user running meshcar write ${found.path} (chown it to that user), or point identity.dir elsewhere`, refusesStored: false };
  }
  // doctor is often run by another user (root) than the sidecar's: the folder's owner is judged
  // as the sidecar (a missing one: as the owner of the folder it would be made in)
  const info = missing ? undefined : await stat(dir);
  const { unsafe } = await placeStore(dir, await judgedUid(dir));
  if (unsafe !== undefined) {
    return { message: `identity.dir ${dir}: ${unsafe.replace(/: another user could swap it.*$/, '')}, so another user could swap it for a folder of theirs: the sidecar neither uses nor saves an SVID there, and each start spends the join token again`, fix: 'keep identity.dir under folders only its user or root may write (remove their group and others write bits, or give them the sticky bit as /tmp has)', refusesStored: false, needsToken: true };
  }
  if (info === undefined) return undefined;
  const others = otherWriters(info, info.uid);
  if (others !== undefined && !('owner' in others)) {
    // not empty: the sidecar does not take it over (made 0700, what someone else put in would pass as its own)
    if ((await readdir(dir).catch(() => [])).length > 0) {
      return {
        message: `identity.dir ${dir} is writable by ${others.who} (mode ${others.mode}) and is not empty: the sidecar neither uses what is stored there nor saves into it (someone else could have put it there, root's files too), so each start needs the join token, and one that is single-use is not sent`,
        fix: `remove what is in ${shellWord(dir)} (the sidecar then gets a new SVID with the join token and makes the folder 0700)`,
        refusesStored: false,
        needsToken: true,
      };
    }
    return {
      message: `identity.dir ${dir} is writable by ${others.who} (mode ${others.mode}): empty, so the sidecar makes it 0700 when it saves its first SVID`,
      fix: `chmod 700 ${shellWord(dir)}`,
      refusesStored: true,
    };
  }
  // a private folder holding another user's entry (a takeover that died part way, a chmod 700 by
  // hand): the sidecar passes what is stored over and refuses to save there (a re-review: ✓)
  const foreign = others === undefined ? await foreignEntry(dir, info.uid).catch(() => undefined) : undefined;
  if (foreign !== undefined) {
    return { message: `identity.dir ${foreign}: the sidecar neither uses what is stored there nor saves into it (someone else could have put it there), so each start needs the join token, and one that is single-use is not sent`, fix: `remove what is not yours from ${shellWord(dir)}`, refusesStored: false, needsToken: true };
  }
  for (const name of Object.values(STORE_FILES)) {
    const file = join(dir, name);
    const why = await stat(file).then((s) => notOurs(s, info.uid), () => undefined);
    if (why !== undefined) {
      return { message: `${file} ${why}: the sidecar will not use the SVID stored there (someone else could have put it there) and asks the CA for a new one with the join token`, fix: `chown the folder's files to the user running meshcar and chmod go-w them, or remove them`, refusesStored: true };
    }
  }
  return undefined;
}

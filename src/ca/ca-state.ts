// The CA's bookkeeping beside its keys: which step of a root rotation it is in and since when
// (state.json), and that the folder is its user's alone (one change at a time: folder-lock.ts).
// state.json is written last by every command that changes the CA's files: a running CA
// server watches it and reloads when it changes. (What the rotation steps wait for is in
// leaf-lifetime.ts.)

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { otherWriters, requireFolder } from '../user-paths.js';
import { shellWord } from '../shell-word.js';
import { judgePath } from '../path-trust.js';

export const STATE_FILE = 'state.json';
export const LEAF_LIFETIME_FILE = 'leaf-lifetime.json';

export interface RootRotation {
  /** added: the new root is pending (in the bundle, not signing); activated: it signs, the old one is retiring. */
  readonly step: 'added' | 'activated';
  readonly addedAt: string;
  readonly activatedAt?: string;
  /** The leaf lifetime at activation: the old root's last leaves are gone this long after it. */
  readonly leafMaxTtlMs?: number;
  /** Set by root add: when every leaf issued before it has expired (see leaf-lifetime.ts). */
  readonly activateFrom?: string;
  /** Set by root activate: when every leaf signed under the old root has expired. */
  readonly retireFrom?: string;
}

export interface CaState {
  /** Bumped by every change of the CA's files; what a running server watches. */
  readonly generation: number;
  readonly rootRotation?: RootRotation;
  readonly issuerRotatedAt?: string;
  readonly rootRetiredAt?: string;
  /**
   * Written by `ca init` before its first key and gone from its last write: while it is here
   * the folder is not a CA yet (a killed init left it half made). Nothing loads such a folder,
   * so nothing was ever signed with its keys and a second init may make them afresh.
   */
  readonly initializing?: { readonly since: string; readonly trustDomain: string };
}

export async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // a folder in its place (EISDIR), no read permission: one line, not a stack trace
    throw new MeshcarError('ca_missing', `${file} cannot be read (${(err as Error).message}); it records the CA's rotation state: restore it from a backup`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new MeshcarError('ca_missing', `${file} is not JSON (${(err as Error).message}); it records the CA's rotation state: restore it from a backup`);
  }
}

/** The one line every command but init gives on a folder an init did not finish. */
export function unfinishedInitError(dir: string, initializing: NonNullable<CaState['initializing']>): MeshcarError {
  return new MeshcarError('ca_missing', `${dir}: "meshcar ca init" started at ${initializing.since} did not finish (killed before its last write), so the folder is not a CA yet; run "meshcar ca init --dir ${shellWord(dir)} --trust-domain ${initializing.trustDomain}" again: it makes the CA afresh`);
}

/**
 * A CA made before state.json existed is at generation 0 with no rotation under way. A folder
 * an init did not finish is refused here, so no command serves or changes it.
 */
export async function readCaState(dir: string): Promise<CaState> {
  const state = await readCaStateAsIs(dir);
  if (state.initializing) throw unfinishedInitError(dir, state.initializing);
  return state;
}

/**
 * Refuses a bad CA folder (requirePrivateCaFolder's one line) and then one an init did not
 * finish; run first by the loaders that read files side by side.
 */
export async function requireFinishedInit(dir: string): Promise<void> {
  await requirePrivateCaFolder(dir);
  await readCaState(dir);
}

/** state.json as it is, an unfinished init's included (for init itself). */
export async function readCaStateAsIs(dir: string): Promise<CaState> {
  const value = (await readJson(join(dir, STATE_FILE))) as Partial<CaState> | undefined;
  if (value === undefined) return { generation: 0 };
  if (typeof value !== 'object' || value === null || !Number.isInteger(value.generation)) {
    throw new MeshcarError('ca_missing', `${join(dir, STATE_FILE)} does not hold the CA's state (no "generation")`);
  }
  const problem = stateProblem(value as Record<string, unknown>);
  if (problem !== undefined) throw new MeshcarError('ca_missing', `${join(dir, STATE_FILE)} does not hold the CA's state: ${problem}; it records the CA's rotation state: restore it from a backup`);
  return value as CaState;
}

/** A time the commands read back (and print): an ISO date string. */
const isTime = (v: unknown): boolean => typeof v === 'string' && v.length <= 64 && Number.isFinite(Date.parse(v));

/**
 * What in a state.json of the right shape is not what the commands write (a hand edit, a
 * half-restored file), or undefined: each field is read back, compared and printed by status
 * and the rotation steps, and a missing addedAt made `ca status` throw (exit 70).
 */
function stateProblem(state: Record<string, unknown>): string | undefined {
  for (const key of ['issuerRotatedAt', 'rootRetiredAt'] as const) {
    if (state[key] !== undefined && !isTime(state[key])) return `its ${key} is not a time`;
  }
  const initializing = state.initializing as Record<string, unknown> | undefined;
  if (initializing !== undefined && (typeof initializing !== 'object' || initializing === null || !isTime(initializing.since) || typeof initializing.trustDomain !== 'string')) return 'its "initializing" is not {since, trustDomain}';
  const rotation = state.rootRotation as Record<string, unknown> | undefined;
  if (rotation === undefined) return undefined;
  if (typeof rotation !== 'object' || rotation === null) return 'its rootRotation is not an object';
  if (rotation.step !== 'added' && rotation.step !== 'activated') return 'its rootRotation.step is neither "added" nor "activated"';
  if (!isTime(rotation.addedAt)) return 'its rootRotation.addedAt is not a time';
  for (const key of ['activatedAt', 'activateFrom', 'retireFrom'] as const) {
    if (rotation[key] !== undefined && !isTime(rotation[key])) return `its rootRotation.${key} is not a time`;
  }
  const ttl = rotation.leafMaxTtlMs;
  if (ttl !== undefined && !(typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0)) return 'its rootRotation.leafMaxTtlMs is not a duration';
  return undefined;
}

/** Writes the next state with the generation bumped: the last write of every CA change. */
export async function writeCaState(dir: string, next: Omit<CaState, 'generation'>, previous: CaState): Promise<CaState> {
  const state: CaState = { ...next, generation: previous.generation + 1 };
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o644);
  return state;
}

/** What a watcher compares: changes whenever state.json is replaced (rename gives a new inode). */
export function stateFingerprint(dir: string): Promise<string> {
  return fileFingerprint(join(dir, STATE_FILE));
}

/** A file's inode, time and size ('none' when it is missing): changes whenever the file is replaced or written. */
export async function fileFingerprint(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return 'none';
  }
}

/**
 * The CA folder must exist, be a folder (checked first, so a bad --dir is one line, not the
 * lock's or a read's errno) and be its user's alone: whoever else can write to it can replace
 * the keys, the bundle or state.json (a rename needs only the folder's write bit). So must what
 * it holds (requirePrivateEntries).
 */
export async function requirePrivateCaFolder(dir: string): Promise<void> {
  await requireFolder(dir, `run "meshcar ca init --dir ${shellWord(dir)} --trust-domain TD" first, or correct the path`, 'give the CA folder (made by meshcar ca init)');
  await refuseSwappableCaFolder(dir);
  const others = otherWriters(await stat(dir));
  if (others === undefined) return requirePrivateEntries(dir);
  if ('owner' in others) {
    throw new MeshcarError('forbidden', `the CA folder ${dir} is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid}), who could replace its keys; run "chown ${others.uid} ${shellWord(dir)} && chmod 700 ${shellWord(dir)}" (as root), or run meshcar as its owner`);
  }
  throw new MeshcarError('forbidden', `the CA folder ${dir} is writable by ${others.who} (mode ${others.mode}), who could replace its keys; run "chmod 700 ${shellWord(dir)}"`);
}

/**
 * The folders on the way to the CA folder, judged as identity.dir's are (path-trust.ts): a user
 * who may rename an entry of one could point the path at another CA folder (a root-owned one
 * passes the folder's own checks), whose keys every command then used (a review). `ca init`
 * asks it before it makes the folder, every other command before it reads one.
 */
export async function refuseSwappableCaFolder(dir: string): Promise<void> {
  const { unsafe } = await judgePath(dir);
  if (unsafe !== undefined) throw new MeshcarError('forbidden', `the CA folder ${dir}: ${unsafe}, so another user could swap it for a folder of their choosing; keep the CA folder under folders only its user or root may write`);
}

/**
 * What the folder holds must be its user's alone too: a file is written in place through its own
 * write bit whatever the folder's, and a private key is read through its own read bit. A folder
 * at 0755 with its keys at 0644 (a backup restored under another umask, a copy or mount that does
 * not keep modes) was taken as it was: any local user could read the root or token key and mint
 * join tokens (a review). A key is any file named `*.key` or `*.key.*` (a `root.key.bak`, a
 * writer's leftover `.root.key.<hex>.tmp`), also in subfolders (a `backup/`), which a re-review
 * found passed at 0644. Root's entries are taken as ours (root may write anything of ours
 * anyway): a volume's root-owned `lost+found` no longer refuses a CA folder at a mount point.
 * The folder's own check (requirePrivateCaFolder) comes first.
 */
async function requirePrivateEntries(dir: string, depth = 0): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    // a subfolder this user may not list (root's lost+found): nothing of ours can be in it
    if (depth > 0) return;
    throw err;
  }
  for (const name of names) {
    const path = join(dir, name);
    // through a symbolic link: the mode that guards the key is its target's
    const info = await stat(path).catch(() => undefined); // gone meanwhile, or a dangling link: nothing to guard
    if (info === undefined) continue;
    const others = otherWriters(info, undefined, true);
    if (others !== undefined && 'owner' in others) {
      throw new MeshcarError('forbidden', `${path} in the CA folder is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid}); run "chown ${others.uid} ${shellWord(path)}" (as root), or run meshcar as its owner`);
    }
    if (info.isFile() && KEY_NAME.test(name) && (info.mode & 0o077) !== 0) {
      const who = (info.mode & 0o070) !== 0 ? ((info.mode & 0o007) !== 0 ? 'group and others' : 'its group') : 'others';
      throw new MeshcarError('forbidden', `the CA key ${path} can be read or written by ${who} (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')}), who could sign with it; run "chmod 600 ${shellWord(path)}"`);
    }
    if (others !== undefined) throw new MeshcarError('forbidden', `${path} in the CA folder is writable by ${others.who} (mode ${others.mode}), who could replace it; run "chmod go-w ${shellWord(path)}"`);
    if (info.isDirectory() && depth < MAX_KEY_DEPTH) await requirePrivateEntries(path, depth + 1);
  }
}

/** A private key's file name: `root.key`, and copies of one (`root.key.bak`, `.root.key.<hex>.tmp`). */
const KEY_NAME = /\.key(?:\.|$)/;
/** How deep subfolders are looked into for keys (a CA folder has none of its own). */
const MAX_KEY_DEPTH = 3;

// One change of a CA folder at a time, across processes (two operators' commands, a command
// and `ca serve` spending a token or rotating its issuer): DIR/.lock holds the pid of the
// process changing the folder, made with O_EXCL. A lock whose process is gone (killed holding
// it) is taken over. Taking over is the delicate part: two waiters that both judged the same
// lock stale used to remove it in turn, and the second removed the lock the first had just
// made, so both changed the folder at once (lost updates, an issuer key and certificate from
// two rotations mixed). A waiter now removes a stale lock only while holding DIR/.lock.takeover
// (O_EXCL too, held for a read and an unlink), and only if the lock is still the one it judged
// (same inode, time and text): a lock made since is never removed.
//
// A pid means something only in its pid namespace on its boot of its host. Two containers on
// one volume (an overlapping restart, a second replica, an init container beside the server)
// see each other's pids as dead, or as some process of their own: judged by its pid alone, a
// live holder's lock was taken over at once and two servers spent one single-use token or made
// two CAs in one folder (a review, with `unshare --pid`). So the lock also names where its pid
// lives (the boot id and the pid namespace). A lock from elsewhere is a lease: its holder
// touches it every HEARTBEAT_MS, and a waiter takes it over once it has seen it unchanged for
// FOREIGN_STALE_AFTER_MS by its own running clock (never by comparing the file's time with its
// wall clock: hosts on one network volume disagree, and clocks step). A holder paused longer
// than that (SIGSTOP, a frozen VM) loses the lock; on release, and at each heartbeat, it acts
// on the lock file only if it is still its own (the same inode and text), so it never removes
// or keeps alive the lock of the waiter that took over.

import { readFileSync, readlinkSync } from 'node:fs';
import { open, rm, utimes } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { errorNaming, removeStaleTemps } from '../atomic-file.js';
import { requirePrivateCaFolder } from './ca-state.js';

export const LOCK_FILE = '.lock';

/**
 * The lock held by another process past the wait: 'forbidden', as every command has always
 * answered it, but told apart from the folder checks' own 'forbidden' (a folder others can
 * write to), which waiting does not mend.
 */
export class LockBusyError extends MeshcarError {}
/** Held only while a stale lock is checked again and removed (a few milliseconds). */
export const TAKEOVER_FILE = '.lock.takeover';
/** How long a CA command waits for another one to finish before it gives up. */
const LOCK_WAIT_MS = 10_000;

export interface LockWait {
  /** How long a command waits for another's lock (LOCK_WAIT_MS unless given; tests use short ones). */
  readonly waitMs?: number;
  /** Tests only: how long a lock from elsewhere must be seen unchanged to be taken over (FOREIGN_STALE_AFTER_MS). */
  readonly foreignStaleAfterMs?: number;
  /**
   * Give up (forbidden, which a token spend answers as 503 ca_busy) once performance.now() passes this, rather than LOCK_WAIT_MS from
   * the call: a CA server answering a sidecar must give up before the sidecar does, counting
   * from when the request came, not from when its turn in the process's queue came.
   */
  readonly until?: number;
}

/**
 * A lock file still empty this long after it was made was left by a holder that died making
 * it; a takeover guard whose holder is gone is removed once this old (its holder died within
 * the few milliseconds it holds it: rare enough that the same care is not taken twice).
 */
const STALE_AFTER_MS = 2_000;
const SWEEP_EVERY_MS = 60_000;
/** How often a holder touches its lock file, so a waiter in another pid namespace sees it is alive. */
const HEARTBEAT_MS = 2_000;
/** A lock from another pid namespace or host seen unchanged this long: its holder is gone (fifteen missed heartbeats). */
const FOREIGN_STALE_AFTER_MS = 30_000;

/** When this process last removed stale temp files from each CA folder. */
const lastSweep = new Map<string, number>();
/**
 * The lock and guard files this process holds now, each with its inode and text (one naming
 * our pid that is not here is a past life's).
 */
const heldHere = new Map<string, { readonly ino: number; readonly text: string }>();
/** A foreign lock (or guard) as this process first saw it unchanged, and since when (performance.now()). */
const unchangedSince = new Map<string, { readonly key: string; readonly since: number }>();

/** A lock file as read: what identifies this very file (a later one at the same path differs). */
interface SeenLock {
  readonly text: string;
  readonly ino: number;
  readonly mtimeMs: number;
}

export async function withCaLock<T>(dir: string, change: () => Promise<T>, wait: LockWait = {}): Promise<T> {
  // every command that changes the folder comes through here: none writes keys into a shared one
  await requirePrivateCaFolder(dir);
  const path = join(dir, LOCK_FILE);
  // by the running time: a wall clock stepped back mid-wait would stretch the wait by the step
  const started = performance.now();
  const deadline = wait.until ?? started + (wait.waitMs ?? LOCK_WAIT_MS);
  const here = pidScope();
  const foreignStaleMs = wait.foreignStaleAfterMs ?? FOREIGN_STALE_AFTER_MS;
  let seen: SeenLock | undefined;
  while (!(await tryCreate(path, here))) {
    seen = await readLock(path);
    if (seen !== undefined && stale(path, seen, here, foreignStaleMs)) {
      // removed: taken at once, before any deadline (a command refused right after it had
      // removed a dead holder's lock named that holder as changing the folder)
      if (await removeStale(dir, path, seen, here, foreignStaleMs)) continue;
    }
    // empty: its holder made it and is writing its pid now
    else if (seen?.text === '') await sleep(10);
    else if (seen !== undefined) await sleep(100);
    // undefined: released between the two, tried again at once
    if (performance.now() > deadline && !waitingOutLease(seen, here, started + foreignStaleMs + 2 * HEARTBEAT_MS, wait)) {
      throw new LockBusyError('forbidden', `${dir} is being changed by another meshcar process (${seen === undefined || seen.text === '' ? 'its lock is being made or taken over' : holderText(seen.text, here)}, see ${path}); try again when it has finished`);
    }
  }
  // the lock's time kept fresh while it is held: the liveness a waiter elsewhere can see
  const heartbeat = setInterval(() => void touch(path), HEARTBEAT_MS);
  heartbeat.unref();
  unchangedSince.delete(path);
  try {
    // what a step killed mid-write left (an unused private key among them): gone at the next
    // one; a server takes the lock per signing, so once a minute at most
    if (Date.now() - (lastSweep.get(dir) ?? -Infinity) >= SWEEP_EVERY_MS) {
      lastSweep.set(dir, Date.now());
      await removeStaleTemps(dir);
    }
    return await change();
  } finally {
    clearInterval(heartbeat);
    await release(path);
  }
}

/**
 * Where this process's pid means something: the host's boot id and our pid namespace, or ''
 * where /proc does not say (then the lock holds the pid alone, as before this was added).
 */
let scope: string | undefined;
function pidScope(): string {
  if (scope === undefined) {
    try {
      // read once per process, by a CA command or server (never on a sidecar's request path)
      scope = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      scope = '';
    }
  }
  return scope;
}

/** A lock's text: `PID` (a lock written without a scope, taken as ours) or `PID SCOPE`. */
function parseLock(text: string): { readonly pid: number; readonly scope: string | undefined } {
  const space = text.indexOf(' ');
  if (space < 0) return { pid: Number(text), scope: undefined };
  return { pid: Number(text.slice(0, space)), scope: text.slice(space + 1) };
}

function holderText(text: string, here: string): string {
  const { pid, scope } = parseLock(text);
  return scope === undefined || scope === here ? `pid ${pid}` : `pid ${pid} in another container or on another host`;
}

async function touch(path: string): Promise<void> {
  // taken over meanwhile (this process paused past the lease): the new holder's lock is its own to keep
  if (!(await stillOurs(path))) return;
  const now = new Date();
  // gone already (released as the timer fired): nothing to keep fresh
  await utimes(path, now, now).catch(() => undefined);
}

/**
 * A command (no `until` of its own) facing a lock from elsewhere waits out its lease: only
 * then can it tell a dead holder, and its 10 s ended first (a review: a dead holder's lock in
 * another container refused every command for good, only a server's repeated spends took it
 * over). Until `leaseEnd` from the command's start, no longer: a live holder's heartbeat keeps
 * changing the lock, and a wait counted from its last change never ended (a second review). A
 * server's spend keeps its `until`; its next ones go on counting.
 */
function waitingOutLease(seen: SeenLock | undefined, here: string, leaseEnd: number, wait: LockWait): boolean {
  if (wait.until !== undefined || seen === undefined || seen.text === '') return false;
  const { scope: where } = parseLock(seen.text);
  if (where === undefined || where === here) return false;
  return performance.now() < leaseEnd;
}

/**
 * How long this process has seen the file at `path` as `seen` (inode, time, text), by its own
 * running clock; 0 when it just changed or was never seen. Neither another host's clock nor a
 * stepped one enters it.
 */
function seenUnchangedFor(path: string, seen: SeenLock): number {
  const key = `${seen.ino}:${seen.mtimeMs}:${seen.text}`;
  const first = unchangedSince.get(path);
  if (first?.key !== key) {
    unchangedSince.set(path, { key, since: performance.now() });
    return 0;
  }
  return performance.now() - first.since;
}

/** Whether the file at `path` is the one this process made and still holds. */
async function stillOurs(path: string): Promise<boolean> {
  const ours = heldHere.get(path);
  if (ours === undefined) return false;
  const now = await readLock(path).catch(() => undefined);
  return now !== undefined && now.ino === ours.ino && now.text === ours.text;
}

/** Makes `path` with O_EXCL holding our pid and where it lives; false if it exists. */
async function tryCreate(path: string, here: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  const text = here === '' ? String(process.pid) : `${process.pid} ${here}`;
  try {
    heldHere.set(path, { ino: (await handle.stat()).ino, text });
    await handle.writeFile(text);
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    // ours by its inode alone: its text is missing or partial (an empty lock left here kept
    // the next command waiting, and forever under a clock stepped back)
    const ours = heldHere.get(path);
    heldHere.delete(path);
    const now = await readLock(path).catch(() => undefined);
    if (ours !== undefined && now !== undefined && now.ino === ours.ino) await rm(path, { force: true });
    // a full disk: the lock file named, not a write without a path (errorNaming)
    throw errorNaming(err, path);
  }
  return true;
}

async function release(path: string): Promise<void> {
  const ours = await stillOurs(path);
  heldHere.delete(path);
  // a lock taken over from us (paused past the lease) is the new holder's: left to it
  if (ours) await rm(path, { force: true });
}

/** The lock file as it is now; undefined if there is none. */
async function readLock(path: string): Promise<SeenLock | undefined> {
  try {
    const handle = await open(path, 'r');
    try {
      // stat and read through one descriptor: the text is this inode's, whatever replaced the path since
      const { ino, mtimeMs } = await handle.stat();
      return { text: await handle.readFile('utf8'), ino, mtimeMs };
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Left by a holder that is gone: its pid names no process, or names us while we do not hold
 * it (a process before us had our pid: a container's pid 1, killed holding the lock and
 * restarted), or it stayed empty longer than any write takes; one written in another pid
 * namespace or boot, whose pid we cannot look up, once its holder stopped touching it.
 */
function stale(path: string, seen: SeenLock, here: string, foreignStaleMs: number): boolean {
  // by our running clock, from when we first saw it as it is (not its time against our clock)
  if (seen.text === '') return seenUnchangedFor(path, seen) >= STALE_AFTER_MS;
  const { pid: holder, scope: where } = parseLock(seen.text);
  // its holder's heartbeat changes it
  if (where !== undefined && where !== here) return seenUnchangedFor(path, seen) >= foreignStaleMs;
  if (holder === process.pid) return !heldHere.has(path);
  return !(Number.isInteger(holder) && holder > 0 && alive(holder));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the stale lock `seen` if it is still there, under the takeover guard; true when it did. */
async function removeStale(dir: string, path: string, seen: SeenLock, here: string, foreignStaleMs: number): Promise<boolean> {
  const guard = join(dir, TAKEOVER_FILE);
  if (!(await tryCreate(guard, here))) {
    // another waiter is taking it over now; its guard is gone in a moment unless it died holding
    // it. A guard is held for milliseconds and never touched: one from elsewhere unchanged that
    // long is dead (judged by the lease, it outlived every command's wait), one of ours by its pid
    const guarding = await readLock(guard);
    const where = guarding === undefined ? undefined : parseLock(guarding.text).scope;
    const foreign = where !== undefined && where !== here;
    if (guarding !== undefined && seenUnchangedFor(guard, guarding) >= STALE_AFTER_MS && (foreign || stale(guard, guarding, here, foreignStaleMs))) await rm(guard, { force: true });
    else await sleep(10);
    return false;
  }
  try {
    const now = await readLock(path);
    if (now === undefined || now.ino !== seen.ino || now.mtimeMs !== seen.mtimeMs || now.text !== seen.text) return false;
    await rm(path, { force: true });
    return true;
  } finally {
    await release(guard);
  }
}

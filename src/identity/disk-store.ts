// Keeps the workload's SVID across restarts under identity.dir, so a restart reuses the
// credential instead of spending the join token again (it may be single-use, and spent).
// Key, chain and bundle only work together, so they are replaced together: every save writes
// a new generation directory (gen-<n>/, fsynced) and then switches one `current` symlink to it
// with a single rename. A crash at any point leaves the old set or the new one, never a mix.
// The previous generation stays as a fallback. svid.crt, svid.key and bundle.pem at the top
// are symlinks into `current` for people and tools; the plain files that older versions and
// `meshcar ca issue --out` write there are read and migrated.

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { fsyncDirectory } from '../atomic-file.js';
import { otherWriters } from '../user-paths.js';
import { makeJudgedFolders, type PathJudgement } from '../path-trust.js';
import { foreignEntry, isEmpty, makePrivate, ownedByUsOrRoot, placeStore, tryWriting } from './store-folder.js';
import { candidatesIn, currentGeneration, CURRENT_LINK, errnoOf, GENERATION, MAX_GENERATION, readSet, STORE_FILES, type Candidate } from './stored-sets.js';
import { lifetimeMs, remainingMs, type Svid } from './svid.js';

/** Same names as `meshcar ca issue` writes, so operators find what they expect. */
export { CURRENT_LINK, STORE_FILES } from './stored-sets.js';
/** Our own temp names (and writeFileAtomic's): debris of a crash, removed by the next save. */
const TEMP = /^\..+\.tmp$/;

const FILE_MODES: ReadonlyArray<readonly [keyof typeof STORE_FILES, number]> = [
  ['key', 0o600],
  ['chain', 0o644],
  ['bundle', 0o644],
];

export interface LoadOptions {
  /** Reuse only while at least this fraction of the lifetime is left (default 0.1). */
  readonly minRemainingFraction?: number;
  readonly now?: Date;
  /** Why sets were refused goes to debug: for a second look that would say it all again. */
  readonly quiet?: boolean;
  /** Nothing written: an old flat layout is not migrated into a generation (`meshcar check`). */
  readonly readOnly?: boolean;
  /** Told why, when something is stored but none of it is used (`meshcar check` says it beside the token it then needs). */
  readonly passedOver?: (why: string) => void;
}

export interface DiskStoreOptions {
  /**
   * Test hook, unused in production: awaited after each step of save() that changes the disk,
   * so a test can kill the process between any two (test/identity/disk-store-crash.test.ts).
   */
  readonly afterStep?: (step: string) => void | Promise<void>;
  /** Test hook, unused in production: awaited after a missing folder was judged and before it is made (test/identity/disk-store-folder.test.ts). */
  readonly beforeMake?: () => void | Promise<void>;
}

/** A new file in a directory nobody reads yet: exclusive create, explicit mode, fsync. */
async function writeNewFile(file: string, content: string, mode: number): Promise<void> {
  const handle = await open(file, 'wx', mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}


export class DiskStore {
  readonly dir: string;
  /** `dir` with its links resolved, as judged at the start of the load or save under way: what it works in. */
  private at: string;
  private readonly logger: Logger;
  private readonly afterStep: (step: string) => void | Promise<void>;
  private readonly beforeMake: () => void | Promise<void>;
  /** The generation served now (loaded or saved last): the next save keeps it as the fallback. */
  private inUse: string | undefined;

  constructor(dir: string, logger: Logger, options: DiskStoreOptions = {}) {
    this.dir = this.at = dir;
    this.logger = logger;
    this.afterStep = options.afterStep ?? (() => undefined);
    this.beforeMake = options.beforeMake ?? (() => undefined);
  }

  /** The top-level name (a symlink into `current` once this store has saved). */
  file(name: keyof typeof STORE_FILES): string {
    return path.join(this.dir, STORE_FILES[name]);
  }

  /**
   * Whether a save can land here, tried before a join token is sent to the CA: a token may be
   * single-use, and one spent on an SVID that cannot be stored was lost (a review: an
   * identity.dir that was a file, or under a folder the user may not write, got an SVID, failed
   * every save, and the next start was refused token_used). Makes the folder as save() does and
   * writes and removes a file in it.
   */
  async prepare(): Promise<void> {
    await this.readyFolder();
    await tryWriting(this.at);
  }

  /** A save's first steps: the folder placed and judged, made if missing (judged again as made), made private. */
  private async readyFolder(): Promise<void> {
    const before = await this.place();
    if (before.unsafe !== undefined) throw new Error(`not saving the SVID in ${this.dir}: ${before.unsafe}`);
    if (!before.complete) {
      await this.beforeMake();
      // one part at a time, each judged before anything is made in it: another user may have made
      // a missing part first (in a sticky folder, say), and a recursive mkdir made our folder
      // wherever a link they put in it led (a review: 1,031 of 5,283 races)
      await makeJudgedFolders(this.dir, { mode: 0o700 });
      const after = await this.place();
      if (after.unsafe !== undefined || !after.complete) throw new Error(`not saving the SVID in ${this.dir}: ${after.unsafe ?? 'it changed while it was made'}`);
    }
    // it holds private keys
    await makePrivate(this.at);
    // what another user put in while it was open to them is neither kept nor removed (see foreignEntry)
    const foreign = await foreignEntry(this.at);
    if (foreign !== undefined) throw new Error(`not saving the SVID in ${this.dir}: ${foreign}, written while the folder was open to others: remove what is not yours, then start again`);
  }

  /**
   * Persists the SVID as a new generation and makes it current in one rename. Single writer
   * per directory: one sidecar owns its identity.dir.
   */
  async save(svid: Svid): Promise<void> {
    await this.readyFolder();
    // the set served now is the one kept as the fallback: after load() fell back from a broken
    // `current`, that broken set was kept and the working one pruned
    const previous = this.inUse ?? (await currentGeneration(this.at));
    const generation = await this.createGeneration();
    const genDir = path.join(this.at, generation);
    await this.afterStep(`created ${generation}`);
    const content = { key: svid.privateKeyPem, chain: svid.chainPem, bundle: svid.bundlePem };
    try {
      for (const [name, mode] of FILE_MODES) {
        await writeNewFile(path.join(genDir, STORE_FILES[name]), content[name], mode);
        await this.afterStep(`wrote ${generation}/${STORE_FILES[name]}`);
      }
      // the files and their names must be on disk before anything points at them
      await fsyncDirectory(genDir);
      await fsyncDirectory(this.at);
      await this.afterStep(`synced ${generation}`);
      await this.moveAsideIfNotLink(CURRENT_LINK);
      await this.pointSymlink(CURRENT_LINK, generation);
    } catch (err) {
      // nothing points at it: a failed save leaves no generation (a private key) behind
      await rm(genDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    this.inUse = generation;
    await fsyncDirectory(this.at);
    await this.afterStep(`switched ${CURRENT_LINK} to ${generation}`);

    // Saved from here on: what is left is tidying, whose failure is told, not a failed save
    // (one counted as failed was retried for good, a generation more each time)
    try {
      // Plain files here were written by an older meshcar or `ca issue --out`; they become links
      // only now, after the switch, so a crash in between leaves them whole (see candidates()).
      for (const [name] of FILE_MODES) {
        const target = `${CURRENT_LINK}/${STORE_FILES[name]}`;
        if ((await readlink(this.file(name)).catch(() => undefined)) === target) continue;
        await this.pointSymlink(STORE_FILES[name], target);
        await this.afterStep(`linked ${STORE_FILES[name]}`);
      }
      await fsyncDirectory(this.at);
      await this.prune(new Set([generation, ...(previous ? [previous] : [])]));
    } catch (err) {
      this.logger.warn({ dir: this.dir, generation }, `the SVID is saved in ${generation}, but tidying ${this.at} failed: ${describeError(err)}; old generations may stay until the next save`);
    }
    this.logger.debug({ dir: this.dir, generation, serial: svid.serialHex }, 'SVID saved');
  }

  /**
   * `current` that is not a link (a copy with `cp -rL` or `rsync -L` made it a directory) is
   * moved aside as temp debris (pruned later): a link cannot be renamed over a directory, and
   * every save failed with EISDIR for as long as the process ran.
   */
  private async moveAsideIfNotLink(name: string): Promise<void> {
    const info = await lstat(path.join(this.at, name)).catch(() => undefined);
    if (info === undefined || info.isSymbolicLink()) return;
    const aside = `.${name}.${randomBytes(6).toString('hex')}.tmp`;
    await rename(path.join(this.at, name), path.join(this.at, aside));
    this.logger.warn({ dir: this.dir }, `${path.join(this.at, name)} was not a link (a copy that followed links?): moved aside as ${aside}, removed at the next tidying`);
  }

  /**
   * The stored SVID if it is valid for expectedSpiffeId and has life left; otherwise undefined.
   * Tries the plain top-level files (only when all three are plain files), then `current`,
   * then older generations, newest first: a broken current set falls back to the previous one.
   * A set that starts within minutes (MAX_NOT_YET_VALID_MS: issued by a CA whose clock is
   * ahead) is returned only when none is valid now; its validFrom says when it may be served.
   */
  async load(expectedSpiffeId: string, options: LoadOptions = {}): Promise<Svid | undefined> {
    const { minRemainingFraction = 0.1, now = new Date() } = options;
    const [warn, info] = options.quiet ? [this.logger.debug, this.logger.debug] : [this.logger.warn, this.logger.info];
    const passOver = (level: typeof warn, message: string, why: string): undefined => {
      level.call(this.logger, { dir: this.dir }, message);
      options.passedOver?.(why);
      return undefined;
    };
    // a set others could have planted is not served (save() makes an empty folder 0700, and
    // refuses one that holds anything while others may write it: store-folder.ts makePrivate)
    let placed: PathJudgement;
    try {
      placed = await this.place();
    } catch (err) {
      return passOver(warn, `cannot read the stored SVID: ${describeError(err)}`, describeError(err));
    }
    // a folder missing when judged holds nothing of ours (one made since may be anyone's)
    if (placed.unsafe === undefined && !placed.complete) {
      this.logger.debug({ dir: this.dir }, 'no stored SVID');
      return undefined;
    }
    const unsafe = placed.unsafe ?? (await this.othersCanWrite());
    // an open folder with nothing in it (a first start): nothing is passed over, nothing to say
    if (placed.unsafe === undefined && unsafe !== undefined && (await isEmpty(this.at).catch(() => false))) {
      this.logger.debug({ dir: this.dir }, 'no stored SVID');
      return undefined;
    }
    if (unsafe !== undefined) return passOver(warn, `not using a stored SVID: ${unsafe}; requesting a new one`, unsafe);
    // another user's entries in a private folder: it was open to them once (a process that died
    // while taking it over left it so), and their set may be root's files they moved in
    const foreign = await foreignEntry(this.at).catch(() => undefined);
    if (foreign !== undefined) return passOver(warn, `not using a stored SVID: ${foreign}, so what it holds may not be ours: remove what is not yours; requesting a new one`, foreign);
    let candidates: Candidate[];
    try {
      candidates = await candidatesIn(this.at);
    } catch (err) {
      return passOver(warn, `cannot read the stored SVID: ${describeError(err)}`, describeError(err));
    }
    if (candidates.length === 0) {
      this.logger.debug({ dir: this.dir }, 'no stored SVID');
      return undefined;
    }

    const refused: string[] = [];
    let broken = false;
    /** The first set that starts within minutes (a CA clock ahead): used only if none is valid now. */
    let soon: { candidate: Candidate; svid: Svid } | undefined;
    const use = async (candidate: Candidate, svid: Svid): Promise<Svid> => {
      if (GENERATION.test(candidate.name)) this.inUse = candidate.name;
      if (refused.length > 0) {
        warn.call(this.logger, { dir: this.dir, using: candidate.name }, `using the stored SVID in ${candidate.name}; refused ${refused.join('; ')}`);
      }
      if (candidate.dir === this.at && options.readOnly !== true) await this.migrate(svid);
      return svid;
    };
    for (const candidate of candidates) {
      let svid: Svid;
      try {
        svid = await readSet(candidate, expectedSpiffeId, now, this.logger);
      } catch (err) {
        broken = true;
        refused.push(`${candidate.name}: ${describeError(err)}`);
        continue;
      }
      if (remainingMs(svid, now) < lifetimeMs(svid) * minRemainingFraction) {
        refused.push(`${candidate.name}: expires at ${svid.notAfter.toISOString()}, too soon to reuse`);
        continue;
      }
      if (svid.validFrom > now) {
        // saved as soon as issued (a spent join token must not be lost), served from its start
        soon ??= { candidate, svid };
        continue;
      }
      return use(candidate, svid);
    }
    if (soon) return use(soon.candidate, soon.svid);
    // all expired is what a long stop looks like; anything else is worth a warning
    return passOver(broken ? warn : info, `no usable stored SVID, requesting a new one: ${refused.join('; ')}`, refused.join('; '));
  }

  /**
   * Resolves the folder's links once (`at`, used for the rest of the load or save), judging every
   * folder on the way (judgePath): says why another user could swap it, and whether it exists.
   * Such a user swapped it for a link to a set of theirs, or to another folder of ours, which a
   * save then made 0700, wrote into and pruned (a re-review: a root sidecar's /tmp lost its sticky
   * bit), and a load served an older set of ours from; judging the files read (notOurs) cannot
   * tell a folder of ours we did not mean.
   */
  private async place(): Promise<PathJudgement> {
    const placed = await placeStore(this.dir);
    this.at = placed.real;
    return placed;
  }

  /** Why someone other than this user may have written the folder, or undefined (see load()). */
  private async othersCanWrite(): Promise<string | undefined> {
    const info = await stat(this.at).catch(() => undefined);
    const others = info && otherWriters(info); // missing (nothing stored) or unreadable: candidates() says so
    if (others === undefined) return undefined;
    const why = 'owner' in others ? `is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid})` : `is writable by ${others.who} (mode ${others.mode})`;
    return `${this.at} ${why}, so its contents may not be ours: remove what is in it (a new SVID is requested and saved there, the folder made 0700), or set another identity.dir`;
  }

  /** Plain files become a generation, so the next save has a previous set to fall back to. */
  private async migrate(svid: Svid): Promise<void> {
    try {
      await this.save(svid);
      this.logger.info({ dir: this.dir, serial: svid.serialHex }, `moved the stored SVID into ${CURRENT_LINK}/ (svid.crt, svid.key and bundle.pem are links to it now)`);
    } catch (err) {
      // still usable as it is; the next renewal's save tries again
      this.logger.warn({ dir: this.dir }, `could not move the stored SVID into a generation directory: ${describeError(err)}`);
    }
  }

  /** gen-<highest + 1>, created empty and private; a name already taken is skipped. */
  private async createGeneration(): Promise<string> {
    const numbers = (await readdir(this.at)).map((e) => Number(GENERATION.exec(e)?.[1] ?? 0));
    for (let n = Math.max(0, ...numbers) + 1; ; n++) {
      // past GENERATION's nine digits a set saved would never be found again
      if (n > MAX_GENERATION) throw new Error(`no generation number left in ${this.at} (gen-${MAX_GENERATION} is there): remove the gen-* folders, then start again`);
      const name = `gen-${n}`;
      try {
        await mkdir(path.join(this.at, name), { mode: 0o700 });
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') continue;
        throw err;
      }
      await makePrivate(path.join(this.at, name));
      return name;
    }
  }

  /** Replaces `name` with a symlink to `target` in one rename (a new link over the old one). */
  private async pointSymlink(name: string, target: string): Promise<void> {
    const temp = path.join(this.at, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    await symlink(target, temp);
    await this.afterStep(`made a temporary link for ${name}`);
    await rename(temp, path.join(this.at, name)).catch(async (err: unknown) => {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    });
  }

  /** Removes generations other than `keep` and temp debris; a crash here only leaves more to remove. */
  private async prune(keep: ReadonlySet<string>): Promise<void> {
    for (const entry of await readdir(this.at)) {
      if (!(GENERATION.test(entry) && !keep.has(entry)) && !TEMP.test(entry)) continue;
      // only what is ours (readyFolder refused a folder holding anyone else's): rm -r through
      // another user's folders followed the links they swapped in (a review)
      const info = await lstat(path.join(this.at, entry)).catch(() => undefined);
      if (info === undefined || !ownedByUsOrRoot(info)) continue;
      await rm(path.join(this.at, entry), { recursive: true, force: true });
      await this.afterStep(`removed ${entry}`);
    }
  }
}

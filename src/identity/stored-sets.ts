// The sets an identity store folder holds (disk-store.ts), found and read: the names they go
// by, the places a complete set may be (a generation, or the plain files at the top), and one
// set read as a load reads it (each file judged on the opened file, never through a link).

import { constants } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { readBoundedText } from '../bounded-file.js';
import { MAX_PEM_FILE_BYTES } from './pem-files.js';
import { isOurFolder, notOurs } from './store-folder.js';
import { validateSvidSoon, type Svid } from './svid.js';

/** Same names as `meshcar ca issue` writes, so operators find what they expect. */
export const STORE_FILES = Object.freeze({ key: 'svid.key', chain: 'svid.crt', bundle: 'bundle.pem' });

/** The symlink naming the authoritative generation; switching it is the one atomic step. */
export const CURRENT_LINK = 'current';

export const GENERATION = /^gen-([1-9]\d{0,8})$/;
/** The highest number GENERATION takes: a set saved past it would never be found again. */
export const MAX_GENERATION = 999_999_999;

/** One place a complete set may be: a generation, or the plain files at the top. */
export interface Candidate {
  readonly name: string;
  readonly dir: string;
}

/** A file-system error's code (ENOENT, ELOOP, ...), or undefined. */
export const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** The generation `current` names in `at`, or undefined. */
export async function currentGeneration(at: string): Promise<string | undefined> {
  const target = await readlink(path.join(at, CURRENT_LINK)).catch(() => undefined);
  // only a sibling generation: never follow a link that points elsewhere
  return target !== undefined && GENERATION.test(target) ? target : undefined;
}

/** The places a set may be in `at`, in the order a load tries them: the plain files, `current`, then older generations, newest first. */
export async function candidatesIn(at: string): Promise<Candidate[]> {
  let entries: string[];
  try {
    entries = await readdir(at);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
  const candidates: Candidate[] = [];
  // All three plain (not links): a whole set written after our last save, by an older meshcar
  // or `ca issue --out`. Any link among them means that writer or our own save stopped part
  // way, and the set is not trusted over the generations.
  const kinds = await Promise.all(Object.values(STORE_FILES).map((f) => lstat(path.join(at, f)).then((s) => s.isFile(), () => false)));
  if (kinds.every(Boolean)) candidates.push({ name: `the files in ${at}`, dir: at });
  const current = await currentGeneration(at);
  if (current) candidates.push({ name: current, dir: path.join(at, current) });
  const older = entries
    .filter((e) => GENERATION.test(e) && e !== current)
    .sort((a, b) => Number(GENERATION.exec(b)?.[1]) - Number(GENERATION.exec(a)?.[1]));
  for (const name of older) candidates.push({ name, dir: path.join(at, name) });
  // a generation is a folder of ours, not a link to one elsewhere (its files are opened without following links, readSet())
  const ours = await Promise.all(candidates.map((c) => c.dir === at || isOurFolder(c.dir)));
  return candidates.filter((_, i) => ours[i]);
}

/** The set at `candidate`, validated for `expectedSpiffeId` (it may start within minutes: validateSvidSoon); throws saying why not. */
export async function readSet(candidate: Candidate, expectedSpiffeId: string, now: Date, logger: Logger): Promise<Svid> {
  const file = (name: keyof typeof STORE_FILES) => path.join(candidate.dir, STORE_FILES[name]);
  let keyMode = 0;
  const readOurs = (name: keyof typeof STORE_FILES) =>
    readBoundedText(
      file(name),
      MAX_PEM_FILE_BYTES,
      (stats) => {
        const why = notOurs(stats);
        if (why !== undefined) throw new Error(`${file(name)} ${why}, so it may not be ours`);
        if (name === 'key') keyMode = stats.mode & 0o777;
      },
      // a file of a set is never a link (the top-level links are read through `current`): a
      // link to a file root owns that holds someone's text (/proc/PID/cmdline) passed notOurs
      constants.O_NOFOLLOW,
    ).catch((err: unknown) => {
      throw errnoOf(err) === 'ELOOP' ? new Error(`${file(name)} is a symbolic link, which a stored set never holds`) : err;
    });
  const [privateKeyPem, chainPem, bundlePem] = await Promise.all([readOurs('key'), readOurs('chain'), readOurs('bundle')]);
  const svid = validateSvidSoon({ privateKeyPem, chainPem, bundlePem, paths: { chain: file('chain'), bundle: file('bundle') } }, expectedSpiffeId, now);
  if (keyMode & 0o077) {
    logger.warn({ file: file('key') }, `the stored private key is readable by others (mode ${keyMode.toString(8)}); chmod 600 it`);
  }
  return svid;
}

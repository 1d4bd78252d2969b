// A config's relative paths (certs/ca/bundle.pem) are read from the working directory, as the
// README says, not from the config's folder. Run from another folder (`meshcar run --config
// site/orders.yaml` from its parent), every file looks missing while the config's folder holds
// it: a missing file is then told so, with the folder to run from, by check, run, doctor and ca
// serve. The folder may also be one above the config's: the repository's own configs live in
// config/ and config/demo/ and name certs/ca from the meshcar folder, two levels up at most.

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { deniedHint } from '../permission-denied.js';
import { MeshcarError } from '../errors.js';

/** How many folders above the config's are looked in (config/demo/x.yaml: the meshcar folder is 2 up). */
const LEVELS_ABOVE = 2;

/**
 * The folder a missing `path` (resolved against the working directory) is found from instead:
 * the config's, or one up to LEVELS_ABOVE above it, the nearest first; undefined when none
 * holds it, or when the path is absolute or leaves the working directory.
 */
export function folderHolding(configFile: string, path: string): string | undefined {
  const cwd = process.cwd();
  const written = relative(cwd, path);
  if (written === '' || written.startsWith('..') || isAbsolute(written) || existsSync(path)) return undefined;
  let folder = dirname(resolve(configFile));
  for (let level = 0; level <= LEVELS_ABOVE; level++) {
    if (folder === cwd) return undefined;
    if (existsSync(join(folder, written))) return folder;
    const parent = dirname(folder);
    if (parent === folder) return undefined;
    folder = parent;
  }
  return undefined;
}

/**
 * '' or `; ... the config's folder holds it (DIR/certs/ca/bundle.pem): ...` for a `path` (resolved
 * against the working directory) that is missing while the same relative path from the
 * config's folder (or one above it) exists. `cwdTold`: the message it ends already names the
 * working directory.
 */
export function configFolderHint(configFile: string, path: string, options: { cwdTold?: boolean } = {}): string {
  const folder = folderHolding(configFile, path);
  if (folder === undefined) return '';
  const cwd = process.cwd();
  const there = join(folder, relative(cwd, path));
  const holder = folder === dirname(resolve(configFile)) ? "the config's folder" : `${folder}, above the config's folder,`;
  const why = options.cwdTold ? '' : `relative paths are read from the working directory (${cwd}), and `;
  return `; ${why}${holder} holds it (${there}): run meshcar from ${folder}, or write the path absolute`;
}

/**
 * The error with what its path needs added: configFolderHint for a missing file (a cause with
 * ENOENT and a path), deniedHint for one this user may not read (EACCES).
 */
export function withPathHint<E extends Error>(err: E, configFile: string, rebuild: (message: string) => E): E {
  const cause = (err as { cause?: NodeJS.ErrnoException & { file?: unknown; detail?: unknown } }).cause;
  // an OpenAPI spec that is not there (SpecError: its file, and a detail saying so)
  if (typeof cause?.file === 'string' && typeof cause.detail === 'string' && cause.detail.startsWith('the spec file does not exist')) {
    const hint = configFolderHint(configFile, resolve(cause.file), { cwdTold: true });
    return hint === '' ? err : rebuild(`${err.message}${hint}`);
  }
  if (typeof cause?.path !== 'string') return err;
  const hint = cause.code === 'ENOENT' ? configFolderHint(configFile, resolve(cause.path)) : cause.code === 'EACCES' ? deniedHint(cause.path) : '';
  if (hint === '') return err;
  // a fix the message ends with that the hint makes wrong (write a token where one is missing,
  // when the config's folder holds it): the hint replaces it
  const fix = (err as { fix?: unknown }).fix;
  const message = typeof fix === 'string' && cause.code === 'ENOENT' && err.message.endsWith(fix) ? err.message.slice(0, -fix.length) : err.message;
  return rebuild(`${message}${hint}`);
}

/**
 * A `PATH: does not exist; <fix>` refusal (bad_path, ENOENT) of a path the config named, when
 * the config's folder or one above it holds PATH: its fix is to run from there, not the one
 * given (`ca serve` said "run meshcar ca init first", which would make a second CA). When none
 * holds it and PATH is `nowhere.path`, the fix is `nowhere.fix`; else `err` as it is.
 */
export function withFolderToRunFrom(err: unknown, configFile: string, nowhere?: { path: string; fix: string }): unknown {
  const cause = (err as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  if (!(err instanceof MeshcarError) || err.code !== 'bad_path' || cause?.code !== 'ENOENT' || typeof cause.path !== 'string') return err;
  const hint = configFolderHint(configFile, resolve(cause.path));
  if (hint !== '') return new MeshcarError('bad_path', `${cause.path}: does not exist${hint}`, { cause });
  return nowhere && resolve(nowhere.path) === resolve(cause.path) ? new MeshcarError('bad_path', `${cause.path}: does not exist${nowhere.fix}`, { cause }) : err;
}

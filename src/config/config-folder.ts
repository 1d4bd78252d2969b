// A config's relative paths (certs/ca/bundle.pem) are read from the working directory, as the
// README says, not from the config's folder. Run from another folder (`meshcar run --config
// site/orders.yaml` from its parent), every file looks missing while the config's folder holds
// it: a missing file is then told so, with the folder to run from, by check, run and doctor.

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { deniedHint } from '../permission-denied.js';

/**
 * '' or `; ... the config's folder holds it (DIR/certs/ca/bundle.pem): ...` for a `path` (resolved
 * against the working directory) that is missing while the same relative path from the
 * config's folder exists. `cwdTold`: the message it ends already names the working directory.
 */
export function configFolderHint(configFile: string, path: string, options: { cwdTold?: boolean } = {}): string {
  const cwd = process.cwd();
  const folder = dirname(resolve(configFile));
  const written = relative(cwd, path);
  if (folder === cwd || written === '' || written.startsWith('..') || isAbsolute(written)) return '';
  const there = join(folder, written);
  if (existsSync(path) || !existsSync(there)) return '';
  const why = options.cwdTold ? '' : `relative paths are read from the working directory (${cwd}), and `;
  return `; ${why}the config's folder holds it (${there}): run meshcar from ${folder}, or write the path absolute`;
}

/**
 * The error with what its path needs added: configFolderHint for a missing file (a cause with
 * ENOENT and a path), deniedHint for one this user may not read (EACCES).
 */
export function withPathHint<E extends Error>(err: E, configFile: string, rebuild: (message: string) => E): E {
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (typeof cause?.path !== 'string') return err;
  const hint = cause.code === 'ENOENT' ? configFolderHint(configFile, resolve(cause.path)) : cause.code === 'EACCES' ? deniedHint(cause.path) : '';
  return hint === '' ? err : rebuild(`${err.message}${hint}`);
}

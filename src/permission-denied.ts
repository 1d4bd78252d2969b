// Which part of a path denies this user (EACCES): a newcomer runs meshcar as another user than
// the one who made its files, and "permission denied, open '.../svid.crt'" blames the file when
// most often a folder on the way (a CA's or an identity.dir's 0700) keeps that user out.

import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * '' or `; the folder DIR (mode 0700, owner uid 0) does not let uid 65534 in` (or the file
 * itself: `... is not readable by uid 65534`): the first part of `path`, from the root down,
 * that this process may not pass (a folder) or read (the file). Bounded by the path's depth.
 */
export function deniedHint(path: string): string {
  const full = resolve(path);
  const folders: string[] = [];
  for (let at = dirname(full); ; at = dirname(at)) {
    folders.unshift(at);
    if (dirname(at) === at) break;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const who = uid === undefined ? 'this user' : `uid ${uid}`;
  for (const folder of folders) {
    if (!allowed(folder, constants.X_OK)) return `; the folder ${folder} (${modeAndOwner(folder)}) does not let ${who} in: run meshcar as its owner, or let that user in (chmod, chown)`;
  }
  if (!allowed(full, constants.R_OK)) return `; ${full} (${modeAndOwner(full)}) is not readable by ${who}: run meshcar as its owner, or make it readable to that user (chown, chmod)`;
  return '';
}

function allowed(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EACCES';
  }
}

function modeAndOwner(path: string): string {
  try {
    const info = statSync(path);
    return `mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${info.uid}`;
  } catch {
    return 'mode unknown';
  }
}

// Whether a world-writable folder is a volume's root that only those who mount it reach (a
// Kubernetes emptyDir is world-writable by design, and only the pod's containers see it), which
// path-trust.ts lets pass. A mount point is not enough: a bind mount of an ordinary folder is one
// too, and that folder is still reached, and its entries renamed, by its own path (a review: a
// 0777 folder in /dev/shm bound into a path passed there and was refused by its /dev/shm path,
// and a local user swapped the identity folder through it). So the mount's file system must not
// be mounted elsewhere here at or above the part this mount shows (/proc/self/mountinfo).

import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

interface Mount {
  readonly device: string;
  /** The folder of its file system this mount shows. */
  readonly root: string;
  readonly mountPoint: string;
}

/** mountinfo writes a space, tab, newline and backslash in a path as an octal escape. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options ... - type source super-options
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    mounts.push({ device: fields[2] as string, root: unescapeMountPath(fields[3] as string), mountPoint: unescapeMountPath(fields[4] as string) });
  }
  return mounts;
}

/** `major:minor` of a device number as glibc's gnu_dev_major and gnu_dev_minor unpack it (stat's dev). */
function deviceName(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function isAtOrAbove(ancestor: string, path: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
}

/**
 * True when `folder` is where a file system is mounted (its parent is on another device) and no
 * other mount here shows the same part of that file system (or a part above it): what is in it
 * is reached through this path alone. Without /proc/self/mountinfo, the device test alone.
 */
export async function isVolumeRootReachedOnlyHere(folder: string, info: Stats): Promise<boolean> {
  const parent = dirname(folder);
  if (parent === folder) return false;
  const parentInfo = await stat(parent).catch(() => undefined);
  if (parentInfo === undefined || parentInfo.dev === info.dev) return false;
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => undefined);
  if (text === undefined) return true;
  const mounts = parseMountInfo(text);
  // the one seen there: of the mounts at that point, the one on the folder's own device (the
  // last listed is not always it: `mount --move` puts a mount of a lower id on top; a re-review)
  const device = deviceName(info.dev);
  const here = mounts.find((mount) => mount.mountPoint === folder && mount.device === device);
  if (here === undefined) return false;
  return !mounts.some((mount) => mount !== here && mount.device === here.device && isAtOrAbove(mount.root, here.root));
}

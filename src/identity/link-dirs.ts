// The folders a file's content is really changed in, when its path is a symlink: the folder of
// each link on the way and of the file it ends at. identity.files may name links into another
// folder (/etc/meshcar/svid.crt → /etc/letsencrypt/live/x/cert.pem → ../../archive/x/cert4.pem);
// a writer rewriting or renaming the target there sends no event in the folder of the name we
// were given, so those folders are watched too (files-source.ts).

import { readlink, realpath } from 'node:fs/promises';
import path from 'node:path';

/** A link chain longer than this is someone's loop; the kernel stops at 40, we look at fewer. */
const MAX_HOPS = 8;

/** Folders other than the file's own that a change to it may happen in; none when it is no link. */
export async function linkedDirs(file: string): Promise<string[]> {
  const own = path.dirname(path.resolve(file));
  const dirs = new Set<string>();
  let hop = path.resolve(file);
  for (let i = 0; i < MAX_HOPS; i++) {
    const target = await readlink(hop).catch(() => undefined);
    if (target === undefined) break; // not a link (or gone): the chain ends here
    hop = path.resolve(path.dirname(hop), target);
    // the folder itself, not a link to it (a Kubernetes secret's ..data names a new folder at
    // each update: the folder it names now is watched, and followed anew after the update)
    dirs.add(await realpath(path.dirname(hop)).catch(() => path.dirname(hop)));
  }
  // links in the folder part too (a Kubernetes secret's ..data): where the bytes live in the end
  const real = await realpath(file).catch(() => undefined);
  if (real !== undefined) dirs.add(path.dirname(real));
  dirs.delete(own);
  return [...dirs].sort();
}

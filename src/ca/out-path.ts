// `ca issue --out` and `ca token --out` kept out of a CA folder. A token written to
// `--out ca/root.key` (a slip of tab completion) replaced the root's private key with the
// token, without a word: the root every sidecar trusts could sign nothing again, and the mesh
// had to be re-rooted. `ca issue --out ca` wrote svid.key beside the CA's keys and its own
// bundle.pem over the one the CA serves. A folder holding a CA (of this or another trust
// domain), or inside one, is refused before anything is signed. So is a path another user could
// change (their folder or link on the way, or an out folder they may write): what is written
// there would be theirs to swap.

import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { otherWriters, realPathOfExisting } from '../user-paths.js';
import { MeshcarError } from '../errors.js';
import { judgePath, makeJudgedFolders } from '../path-trust.js';
import { isVolumeRootReachedOnlyHere } from '../volume-root.js';
import { CA_FILES } from './file-names.js';
import { STATE_FILE } from './ca-state.js';

/** Files only a CA folder holds; either one marks it (state.json alone: an init that was cut short). */
const CA_MARKERS = [CA_FILES.rootKey, STATE_FILE];

/**
 * Throws when `folder` (where --out writes `what`) holds a CA. `out` is the path as typed,
 * named first in the message as every path error does.
 */
export function refuseOutInCaFolder(out: string, folder: string, what: string): void {
  const found = caFolderAround(folder);
  if (found === undefined) return;
  if (found.inside === undefined) throw new MeshcarError('bad_path', `${out}: ${folder} holds a CA (${found.marker}), and --out would write ${what} over or beside its keys; choose a path outside any CA folder`);
  // a folder inside one too: `ca issue --out ca/issuers` put the leaf and the root among the
  // CA's earlier issuers, which `ca status` then listed as issuers
  throw new MeshcarError('bad_path', `${out}: it is inside ${found.inside}, which holds a CA (${found.marker}), and --out would write ${what} among the CA's files; choose a path outside any CA folder`);
}

/**
 * Whether `folder` holds a CA, or lies inside a folder that does: the file that marks it, and
 * the folder above holding it (undefined: `folder` itself). Both places the path may name are
 * looked at: where the kernel takes it (realPathOfExisting: `link/..` is the link target's
 * parent) and where a path joined as text lands (join() and resolve() take `link/..` away; ca
 * issue writes its files there, a token's temp file is made there): a CA in either counts.
 */
export function caFolderAround(folder: string, marks: (dir: string) => string | undefined = caMarker): { marker: string; inside?: string } | undefined {
  for (const place of new Set([realPathOfExisting(folder), resolve(folder)])) {
    const marker = marks(place);
    if (marker !== undefined) return { marker };
    for (let dir = dirname(place), depth = 0; depth < MAX_DEPTH; dir = dirname(dir), depth++) {
      const above = marks(dir);
      if (above !== undefined) return { marker: above, inside: dir };
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** A path has at most 4096 bytes: far fewer folders than this above it. */
const MAX_DEPTH = 2048;

function caMarker(folder: string): string | undefined {
  return CA_MARKERS.find((name) => existsSync(join(folder, name)));
}

/**
 * A CA's folder by its key pairs (root.key with root.crt or state.json, issuer.key with issuer.crt), for
 * judging a folder a sidecar writes in: a state.json alone, any app's file name, above a
 * sidecar's identity.dir refused a deployment that had always started (the third review).
 */
export function caKeysMarker(folder: string): string | undefined {
  // (root.key with state.json: an init cut short between writing the keys and the certificates)
  for (const [key, cert] of [[CA_FILES.rootKey, CA_FILES.rootCert], [CA_FILES.issuerKey, CA_FILES.issuerCert], [CA_FILES.rootKey, STATE_FILE]] as const) {
    if (existsSync(join(folder, key)) && existsSync(join(folder, cert))) return key;
  }
  return undefined;
}

/**
 * Judges `ca issue --out` and makes its missing folders (0700) one part at a time, each judged
 * before anything is made in it (path-trust.ts): a recursive mkdir walked the path again, so
 * another user who made a missing part first (in a sticky folder such as /tmp), holding a link,
 * had the folders made, and the SVID's key written, where they chose. A path another user could
 * change is refused, an existing one too: their folder in /tmp, or their link to a folder of
 * ours, took the key and a bundle.pem of their choosing after it (a re-review).
 */
export async function makeOutFolder(dir: string): Promise<void> {
  const judged = await makeJudgedFolders(dir, { mode: 0o700 });
  if (judged.unsafe !== undefined) throw new MeshcarError('bad_path', `${dir}: refused, since another user could change where it leads (${judged.unsafe}); ${OWN_FOLDER}`);
  if (!judged.complete) throw new MeshcarError('bad_path', `${dir}: it changed while its folders were made; run the command again`);
  await refuseChangeableFolder(dir, judged.real);
}

const OWN_FOLDER = 'choose a folder only you (or root) can change';

/**
 * `ca token --out FILE`'s folder, judged as `ca issue --out`'s is (it is not made: it must
 * exist): through another user's folder or link the token file went where they chose, and in a
 * folder they may write they could replace it (a re-review).
 */
export async function judgeTokenFolder(file: string): Promise<void> {
  const folder = dirname(resolve(file));
  const judged = await judgePath(folder);
  if (judged.unsafe !== undefined) throw new MeshcarError('bad_path', `${file}: refused, since another user could change where it leads (${judged.unsafe}); ${OWN_FOLDER}`);
  if (judged.complete) await refuseChangeableFolder(file, judged.real);
}

/**
 * Refuses an out folder (reached safely) whose files another user could replace: one they own,
 * or one their group or others may write, but a sticky one (/tmp: only a file's owner may rename
 * it) and a volume's root reached only here (a Kubernetes emptyDir). What the key or token is
 * written beside would be theirs to swap: a bundle.pem of their own root, say (a re-review).
 */
async function refuseChangeableFolder(out: string, real: string): Promise<void> {
  const info = await stat(real);
  const others = otherWriters(info, undefined, true);
  if (others === undefined) return;
  if ('owner' in others) throw new MeshcarError('bad_path', `${out}: refused, since ${real} is owned by uid ${others.owner}, not by the user running meshcar (uid ${others.uid}), who could replace what is written there; ${OWN_FOLDER}`);
  if ((info.mode & 0o1000) !== 0 || (await isVolumeRootReachedOnlyHere(real, info))) return;
  throw new MeshcarError('bad_path', `${out}: refused, since ${others.who} may write ${real} (mode ${others.mode}) and so replace what is written there; ${OWN_FOLDER}`);
}

// `ca issue --out` and `ca token --out` kept out of a CA folder. A token written to
// `--out ca/root.key` (a slip of tab completion) replaced the root's private key with the
// token, without a word: the root every sidecar trusts could sign nothing again, and the mesh
// had to be re-rooted. `ca issue --out ca` wrote svid.key beside the CA's keys and its own
// bundle.pem over the one the CA serves. A folder holding a CA (of this or another trust
// domain), or inside one, is refused before anything is signed.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { realPathOfExisting } from '../user-paths.js';
import { MeshcarError } from '../errors.js';
import { makeJudgedFolders } from '../path-trust.js';
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
  if (judged.unsafe !== undefined) throw new MeshcarError('bad_path', `${dir}: not made, since another user could change where it leads (${judged.unsafe}); choose a folder only you (or root) can change`);
  if (!judged.complete) throw new MeshcarError('bad_path', `${dir}: it changed while its folders were made; run the command again`);
}

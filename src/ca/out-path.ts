// `ca issue --out` and `ca token --out` kept out of a CA folder. A token written to
// `--out ca/root.key` (a slip of tab completion) replaced the root's private key with the
// token, without a word: the root every sidecar trusts could sign nothing again, and the mesh
// had to be re-rooted. `ca issue --out ca` wrote svid.key beside the CA's keys and its own
// bundle.pem over the one the CA serves. A folder holding a CA (of this or another trust
// domain) is refused before anything is signed.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { CA_FILES } from './store.js';
import { STATE_FILE } from './ca-state.js';

/** Files only a CA folder holds; either one marks it (state.json alone: an init that was cut short). */
const CA_MARKERS = [CA_FILES.rootKey, STATE_FILE];

/**
 * Throws when `folder` (where --out writes `what`) holds a CA. `out` is the path as typed,
 * named first in the message as every path error does.
 */
export function refuseOutInCaFolder(out: string, folder: string, what: string): void {
  const marker = CA_MARKERS.find((name) => existsSync(join(folder, name)));
  if (marker === undefined) return;
  throw new MeshcarError('bad_path', `${out}: ${folder} holds a CA (${marker}), and --out would write ${what} over or beside its keys; choose a path outside any CA folder`);
}

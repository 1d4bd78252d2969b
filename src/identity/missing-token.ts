// The fix for a join token file that is not there: the command that writes one for this
// service at this path. `check` adds it at identity.ca.token, `run` when it needs the token (no
// usable SVID on disk): "does not exist" alone left a newcomer to find which command makes one.

import { join, relative } from 'node:path';
import { shellWord } from '../shell-word.js';

/** `; write one: meshcar ca token ...` for the token file `tokenPath` of `spiffeId`'s sidecar. */
export function writeTokenFix(tokenPath: string, spiffeId: string): string {
  const service = spiffeId.slice(spiffeId.lastIndexOf('/') + 1);
  // make token writes certs/<service>.token under the folder it runs in: named when that is the path
  const byMake = relative(process.cwd(), tokenPath) === join('certs', `${service}.token`) ? ` (or make token SERVICE=${service} in the meshcar folder)` : '';
  return `; write one with your CA's folder: meshcar ca token --dir CA_DIR --service ${service} --out ${shellWord(tokenPath)}${byMake}`;
}

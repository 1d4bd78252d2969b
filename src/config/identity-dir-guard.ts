// identity.dir judged before a sidecar writes there (at `check`, and at start before the CA is
// asked: a single-use join token would be spent first). Under /proc, Node 20's recursive mkdir
// never returns and the sidecar spun a core for good, deaf to SIGTERM; under /sys saving the
// SVID failed and was retried for ever. In a CA's folder (or one inside it) the store made
// bundle.pem a link into its own generations, wrote svid.key beside root.key and deleted the
// CA's temp files as its own (the bad-input review). Both are refused, saying where.

import { refuseKernelPath } from '../user-paths.js';
import { caFolderAround, caKeysMarker } from '../ca/out-path.js';
import { MeshcarError } from '../errors.js';

/** Throws a bad_path MeshcarError naming identity.dir when the sidecar may not keep its key there. */
export function refuseIdentityDir(dir: string): void {
  try {
    refuseKernelPath(dir);
  } catch (err) {
    throw new MeshcarError('bad_path', `identity.dir ${(err as Error).message}`);
  }
  // by the CA's key pairs: a state.json alone may be any app's
  const ca = caFolderAround(dir, caKeysMarker);
  if (ca === undefined) return;
  const where = ca.inside === undefined ? `${dir} holds a CA (${ca.marker})` : `${dir} is inside ${ca.inside}, which holds a CA (${ca.marker})`;
  throw new MeshcarError('bad_path', `identity.dir: ${where}, and the sidecar would keep its key and SVID among the CA's files (rewriting its bundle.pem, removing its temp files); choose a folder of its own outside any CA folder`);
}

/** The same judgement as a problem text, or undefined (`meshcar check`). */
export function identityDirProblem(dir: string): string | undefined {
  try {
    refuseIdentityDir(dir);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^identity\.dir:? /, '');
  }
}

// Test helper: an `identity.files` set (cert-manager's names: tls.crt, tls.key, ca.crt) written
// in a folder, holding one SVID: the chain, the key (0600) and the bundle.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SvidMaterial } from '../../src/identity/svid.js';

export interface SvidFileSet {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
}

export async function writeSvidFileSet(dir: string, svid: SvidMaterial): Promise<SvidFileSet> {
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), bundle: join(dir, 'ca.crt') };
  await writeFile(files.cert, svid.chainPem);
  await writeFile(files.key, svid.privateKeyPem, { mode: 0o600 });
  await writeFile(files.bundle, svid.bundlePem);
  return files;
}

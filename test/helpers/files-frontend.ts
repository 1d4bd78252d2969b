// Test helper: the head of a `frontend` sidecar config that reads its identity from files, as
// an operator writes one: its SVID from the test PKI written into `dir`, then the lines up to
// `outbound.upstreams:`, for the caller to add its upstreams and the rest.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_ID, TD } from './outbound-fixture.js';
import type { TestPki } from './pki.js';

/** Writes frontend's SVID files into `dir`; the config's lines from `service:` to `  upstreams:`. */
export async function frontendFilesHead(dir: string, pki: TestPki): Promise<string[]> {
  const svid = await pki.issue(APP_ID);
  await writeFile(join(dir, 'svid.crt'), svid.chainPem);
  await writeFile(join(dir, 'svid.key'), svid.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), pki.bundlePem);
  return [
    'service: frontend',
    `trustDomain: ${TD}`,
    'identity:',
    `  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}`,
    'outbound:',
    '  listen: 127.0.0.1:0',
    '  upstreams:',
  ];
}

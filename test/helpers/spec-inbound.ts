// An inbound (inbound-fixture.ts) holding an OpenAPI spec, for the tests of the OpenAPI check
// over real mTLS: the spec as YAML text, written to the test's own folder, or the path of a
// spec file; and the client options its callers present (a certificate from the test CA).

import type t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { startInbound } from './inbound-fixture.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

export interface SpecInboundOptions {
  readonly maxBodySize: number;
  readonly mode?: 'enforce' | 'shadow';
  /** The file the YAML text is written to, in the test's folder (default api.yaml). */
  readonly fileName?: string;
}

/** Starts an inbound that checks requests against `spec` (YAML text, or a file's path); closed at the test's end. */
export async function startSpecInbound(t: TapTest, spec: string, options: SpecInboundOptions) {
  let path = spec;
  if (spec.includes('\n')) {
    path = join(t.testdir(), options.fileName ?? 'api.yaml');
    await writeFile(path, spec);
  }
  const f = await startInbound();
  t.teardown(() => f.close());
  f.inbound.setSchema(await loadGuard({ spec: path, mode: options.mode ?? 'enforce', maxBodySize: options.maxBodySize }));
  return { f, tls: await f.tlsOptions() };
}

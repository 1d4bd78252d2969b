// An inbound (inbound-fixture.ts) holding an OpenAPI spec, for the tests of the OpenAPI check
// over real mTLS: the spec as YAML text, written to the test's own folder, or the path of a
// spec file; and the client options its callers present (a certificate from the test CA).

import type t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h1Request, startInbound } from './inbound-fixture.js';

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
  const tls = await f.tlsOptions();
  /** One request over mTLS: its status, and the message of the JSON error when it is not 200 ('' for a 200). */
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
    const res = await h1Request(f.port, tls, { method, path, headers, ...(body === undefined ? {} : { body }) });
    return { status: res.status, message: res.status === 200 ? '' : String(JSON.parse(res.body).message) };
  };
  return { f, tls, call };
}

// The last word of a sidecar that could not reach its CA at first start: after its retries it
// exits, and "the CA at URL is unreachable: connect ECONNREFUSED" alone did not say that it had
// waited, nor what to do next. Said once, on the error that ends the start.

import { MeshcarError } from '../errors.js';

/** `err` (ca_unreachable) with how long the sidecar waited and what to do. */
export function caGaveUp(err: MeshcarError, waitedMs: number): MeshcarError {
  const waited = waitedMs >= 1000 ? `${Math.round(waitedMs / 100) / 10} s` : `${waitedMs} ms`;
  const fix = `; gave up after ${waited} of retries: start the CA (meshcar ca serve --config FILE) or correct identity.ca.url, then start the sidecar again (meshcar doctor --config FILE checks the CA's address)`;
  return new MeshcarError(err.code, `${err.message}${fix}`, { cause: err.cause });
}

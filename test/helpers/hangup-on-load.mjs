// Preload (`node --import`) for a test of `meshcar run`'s first moments: a module-loading hook
// that sends the process SIGHUP while the module defining the commands (SIDECAR_COMMANDS) is
// being loaded, before any of it runs: the moment a SIGHUP during start-up meets the process
// with only what ran before that module to catch it. Both halves in one file: imported on the
// main thread it registers itself; on the hooks thread it is the hook.

import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

let sent = false;

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!sent && url.startsWith('file:') && /\bSIDECAR_COMMANDS\s*=/.test(String(result.source ?? ''))) {
    sent = true;
    process.kill(process.pid, 'SIGHUP');
  }
  return result;
}

if (isMainThread) register(import.meta.url);

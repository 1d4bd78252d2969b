#!/usr/bin/env -S UV_THREADPOOL_SIZE=16 node --max-semi-space-size=4 --heap-growing-percent=50
// meshcar's entry: holds the signals a long-running command answers (SIGHUP, SIGTERM, SIGINT)
// from the first moment, then loads the command line (src/cli/main.ts). A SIGHUP while the
// modules load (tens of ms on a busy host) ended `meshcar run` (exit 129), which the README
// promises it does not: the hold is installed here, by a module that imports nothing else, and
// the rest is a dynamic import after it.
//
// The launcher line caps V8's young generation at 4 MB per semi-space: measured, it cuts a busy
// sidecar's peak RSS by 15-25 MB at no measurable CPU cost. And it fixes V8's old-generation
// growth at 1.5× what survived the last full GC: left to V8, a busy outbound's next full GC came
// at anything from 21 to 52 MB of heap (13 MB live), so its peak RSS was 78 MB in one run and
// 113 MB in the next (make bench, 4 runs each: 79-114 MB, with the flag 80-82 MB, CPU alike
// within 0.6 µs). And it gives libuv's thread pool 16 threads, not 4: host-name lookups
// (getaddrinfo) may hold half of them, and a resolver that does not answer holds one per name for
// its whole timeout; with 8, names that answer and connections to an app named by host name
// still find one (src/name-lookups.ts). The pool is made before any of this file runs,
// so only the environment can set it. `node dist/cli.js` users pass the flags themselves.

import { setFlagsFromString } from 'node:v8';
import { holdSignalsFromStart } from './cli/startup-signals.js';
import { holdCompilersWhileStarting } from './compiler-tiers.js';

// the long-running commands only: a one-shot command (`ca token`, `--help`) ends on a signal as any tool does
const [first, second] = process.argv.slice(2);
if (first === 'run' || (first === 'ca' && second === 'serve')) holdSignalsFromStart();
// V8's compilers above the interpreter wait until the sidecar is ready (src/compiler-tiers.ts:
// ~5 MB less resident in a sidecar that has started and not served traffic yet)
if (first === 'run') holdCompilersWhileStarting();
// V8's allocation-site pretenuring off, before any of meshcar's code runs (here, not on the
// launcher line, which the kernel may cut at 127 characters, and so for `node dist/cli.js` and
// the workers, which run this same file, too). In about half the runs a busy outbound's
// per-request objects were judged long-lived during the first burst and allocated in the old
// generation from then on: 40-70 full collections a run, and 48-65 µs of CPU a request where
// the other runs paid 31-40 (make bench, interleaved: 3 of 10 runs without it, 0 of 14 with it,
// set here or as a flag; peak RSS ~4 MB lower, CPU in the good runs alike: 36.0 against 35.9 µs)
setFlagsFromString('--no-allocation-site-pretenuring');
try {
  await import('./cli/main.js');
} catch (err) {
  // the command line's modules could not be read: at a low open-files limit (a container's
  // nofile of a few dozen) that was Node's stack trace; the rest of meshcar's words are not loaded
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'EMFILE' && code !== 'ENFILE') throw err;
  process.stderr.write(`meshcar: no file descriptor left to load meshcar's modules (${String(code)}); raise the open-files limit (ulimit -n, a container's nofile): a sidecar takes about 50 descriptors to start and one more per connection it holds\n`);
  process.exitCode = 1;
}

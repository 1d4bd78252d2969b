// Holds V8's two compilers above the interpreter, Sparkplug (baseline) and TurboFan
// (optimizing), off while `meshcar run` starts, and turns them back on once the sidecar is
// ready (sidecar.ts; issue 10: idle RSS).
//
// Why: starting touches a few loops hot enough for TurboFan (Node's ES module loader resolving
// each of our files' URLs, the HPACK Huffman table built at load), and the first function it
// optimizes brings the compiler's code into memory, pages of the node binary that then stay
// resident in a sidecar that is only waiting for traffic. Measured in `identity.files` mode, 20 s
// after start (three starts each): 59.3 MB RSS with both compilers on, 55.1-55.6 with TurboFan
// held, 54.1-54.4 with both held; CPU to ready alike (0.39-0.60 s either way, the host's noise),
// also with a 300-operation OpenAPI spec to compile first (2.7-3.6 s either way: Ajv's compile
// runs little code many times over).
// Under traffic both compilers come back as they would have anyway: a busy sidecar's peak RSS
// and CPU per request are what they were (README, Benchmarks).
//
// Node's flags are read by V8 at each tier-up decision, so turning them back on takes effect for
// every function, those that ran during the start included (checked with V8's own
// %GetOptimizationStatus: baseline, then optimized, after the flags return). A user who set
// either compiler's flag (or --jitless) on node's command line or in NODE_OPTIONS keeps it.

import { setFlagsFromString } from 'node:v8';

const SET_BY_USER = /--(no-)?(turbofan|opt|sparkplug|jitless|always-turbofan|always-opt|always-sparkplug)\b/;

let held = false;

/** `meshcar run` only (cli.ts), before its modules load. */
export function holdCompilersWhileStarting(): void {
  if (SET_BY_USER.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`)) return;
  setFlagsFromString('--no-sparkplug');
  setFlagsFromString('--no-turbofan');
  held = true;
}

/** Both compilers back on; a no-op unless holdCompilersWhileStarting() held them. */
export function releaseCompilers(): void {
  if (!held) return;
  held = false;
  setFlagsFromString('--sparkplug');
  setFlagsFromString('--turbofan');
}


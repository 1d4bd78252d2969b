// Holds V8's two compilers above the interpreter, Sparkplug (baseline) and TurboFan
// (optimizing), off while `meshcar run` starts, and turns them back on once the sidecar is
// ready, or before it compiles an OpenAPI spec (sidecar.ts; issue 10: idle RSS).
//
// Why: starting touches a few loops hot enough for TurboFan (Node's ES module loader resolving
// each of our files' URLs, the HPACK Huffman table built at load), and the first function it
// optimizes brings the compiler's code into memory, pages of the node binary that then stay
// resident in a sidecar that is only waiting for traffic. Measured in `identity.files` mode, 20 s
// after start (three starts each): 59.3 MB RSS with both compilers on, 55.1-55.6 with TurboFan
// held, 54.1-54.4 with both held; CPU to ready alike (0.39-0.60 s either way, the host's noise).
// A spec is another matter: 2,000 operations took 12.6-14.2 s to ready held against 9.0-12.5,
// 5,000 took 41-44 s against 28-29 (review), so a config naming one lets them go first.
// The saving lasts until the sidecar has served some traffic (after 200 requests both builds
// were at 60-62 MB): both compilers come back as they would have anyway, and a busy sidecar's
// peak RSS and CPU per request are what they were (README, Benchmarks).
//
// Node's flags are read by V8 at each tier-up decision, so turning them back on takes effect for
// every function, those that ran during the start included (checked with V8's own
// %GetOptimizationStatus: baseline, then optimized, after the flags return). A user who set
// a flag for either compiler on node's command line keeps it (Node refuses them in NODE_OPTIONS,
// but for --jitless, which is looked for there too).

import { setFlagsFromString } from 'node:v8';

/** A flag for either compiler (or one that bounds them), in any of V8's spellings once `_` reads as `-`: `--noopt`, `--no-turbofan`, `--max-opt=0`, `--maglev`, `--always-sparkplug`. */
const SET_BY_USER = /--(no-?)?(turbofan|opt|sparkplug|jitless|maglev)\b|--always-[a-z-]+|--max-opt\b/;

let held = false;

/** `meshcar run` only (cli.ts), before its modules load. */
export function holdCompilersWhileStarting(): void {
  if (SET_BY_USER.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`.replace(/_/g, '-'))) return;
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


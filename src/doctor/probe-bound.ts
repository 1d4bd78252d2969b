// The bound of each of doctor's probes (a dial, an HTTP answer, a PING, a name lookup, a file
// read): 3 s, or `meshcar doctor --timeout`; and the error a probe that runs out of it ends with.

/** Each probe's bound unless `meshcar doctor --timeout` gives another (setProbeTimeout). */
export const PROBE_TIMEOUT_MS = 3000;

/** A probe's bound and what set it, for the line that says it ran out ('' : nothing to add). */
export interface ProbeBound {
  readonly ms: number;
  readonly why: string;
}

// doctor is a one-shot command: its --timeout is set once, before the first probe
let probeBound: ProbeBound = { ms: PROBE_TIMEOUT_MS, why: "doctor's probe timeout: --timeout gives more" };

/** `meshcar doctor --timeout`: every probe's bound from now on. */
export function setProbeTimeout(ms: number): void {
  probeBound = { ms, why: "doctor's --timeout" };
}

/** The bound of each probe (a dial, an HTTP answer, a PING, a file read): 3 s, or --timeout. */
export function defaultProbeBound(): ProbeBound {
  return probeBound;
}

export function probeTimeout(bound: ProbeBound, what = 'no answer'): Error {
  return Object.assign(new Error(`${what} within ${bound.ms} ms${bound.why === '' ? '' : ` (${bound.why})`}`), { code: 'PROBE_TIMEOUT' });
}

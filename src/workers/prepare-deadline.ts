// How long each worker may take to prepare a reload (reload-round.ts) before it counts as stuck
// and is restarted. A worker prepares what the primary has just read and prepared: the same
// OpenAPI documents compiled into validators, which runs synchronously (its event loop answers
// nothing meanwhile), while the other workers do the same on the cores they share. A fixed
// bound (the asks' 10 s) did not hold that: a 1.7 MB spec the primary compiled in ~5 s took
// each of two workers over 10 s, every reload of that file was aborted, and both workers
// were killed at once, every time (the workers review). So the bound grows with what the
// primary measured: three times it, times the workers per core, on top of the asks' own; and
// at most PREPARE_MAX_MS, as the primary's time may hold waits the workers do not have (a slow
// file system): the health checks are paused for the round, so it must end.

import { ASK_TIMEOUT_MS } from './asks.js';

/** The margin over the primary's own time: the workers' copy of the documents, their share of a busy machine. */
const PRIMARY_TIME_FACTOR = 3;

/**
 * The longest a prepare is waited for: eight workers on two cores compiling a spec near the
 * 5 MiB limit (each of two took ~30 s on this machine's two cores) take about two minutes.
 */
export const PREPARE_MAX_MS = 300_000;

/** `primaryMs`: what reading and preparing the config took the primary; `workers` share `cores`. */
export function prepareDeadlineMs(primaryMs: number, workers: number, cores: number): number {
  const perCore = Math.max(1, workers / Math.max(1, cores));
  return Math.min(PREPARE_MAX_MS, ASK_TIMEOUT_MS + Math.ceil(PRIMARY_TIME_FACTOR * Math.max(0, primaryMs) * perCore));
}

/** How the bound was made, for the log line that gives it. */
export function describePrepareDeadline(primaryMs: number): string {
  return `${ASK_TIMEOUT_MS} ms, plus ${PRIMARY_TIME_FACTOR} times the ${Math.round(primaryMs)} ms the primary took to read and prepare it, per worker on each core; at most ${PREPARE_MAX_MS} ms`;
}

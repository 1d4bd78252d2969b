// The CPU one run of something costs, for tests that bound a cost: process CPU, not the clock,
// so other processes' load does not count.

/**
 * The CPU time of one run in ms: the least of five rounds of 15 (the least: a collection of
 * garbage, which counts the GC threads' time too, falls in one round), after five runs that
 * let it be compiled first.
 */
export function cpuMsPerRun(run: () => unknown): number {
  for (let i = 0; i < 5; i++) run();
  let least = Infinity;
  for (let round = 0; round < 5; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < 15; i++) run();
    const used = process.cpuUsage(before);
    least = Math.min(least, (used.user + used.system) / 1000 / 15);
  }
  return least;
}

// DEMO_SECONDS, how long `make demo` drives traffic before it stops and prints its summary:
// unset, empty or 0 run until Ctrl-C. Read strictly: Number('30s') is NaN, which compared as
// "not above 0", so DEMO_SECONDS=30s ran until Ctrl-C without a word.

/** The seconds from DEMO_SECONDS (0: until Ctrl-C); a bad value is one clear line. */
export function demoSeconds(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 0;
  const seconds = /^\s*\d+(?:\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(seconds)) throw new Error(`DEMO_SECONDS=${value}: expected a number of seconds, e.g. 30 (unset or 0: until Ctrl-C)`);
  return seconds;
}

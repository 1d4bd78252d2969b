// Durations as people write them in YAML and on the command line: 250ms, 2s, 5m, 24h, 7d, 1h30m.

/** One day in milliseconds (the `d` of a duration; certificate lifetimes and limits count in days). */
export const DAY_MS = 86_400_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (!match || match.index !== start) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A wait or an age for people to read, to two units at most, rounded up: 23h59m, 3650d, 4s. */
export function formatApproxDuration(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds >= 2 * 86_400) return `${Math.ceil(seconds / 86_400)}d`;
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const first = units.findIndex(([, size]) => seconds >= size);
  if (first === -1) return '0s';
  const [unit, size] = units[first] as [string, number];
  const next = units[first + 1];
  if (!next) return `${seconds}${unit}`;
  // rounded up in the smaller unit first, so 86399 s reads 1d, not 23h60m
  const small = Math.ceil(seconds / next[1]);
  const ratio = size / next[1];
  const whole = Math.floor(small / ratio);
  const rest = small - whole * ratio;
  return rest === 0 ? `${whole}${unit}` : `${whole}${unit}${rest}${next[0]}`;
}

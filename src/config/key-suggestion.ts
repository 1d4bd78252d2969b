// "did you mean timeout?" for an unknown config key: the allowed key within two edits of it
// (case aside), if any. Bounded: a config may hold tens of thousands of unknown keys (1 MiB of
// them took 1.5 s to check, on every reload, with the event loop held), so a candidate is
// dropped as soon as it cannot come closer than the best so far.

/** More edits than this and the key is not a typo of the candidate. */
const MAX_EDITS = 2;

/**
 * A key as compared: case, `_` and `-` aside. `max_header_list_size` and `max-header-list-size`
 * are maxHeaderListSize as other tools write their keys (snake case, kebab case); counted as
 * edits, three or more separators put them out of reach (the bad-input review).
 */
const squashed = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');

/**
 * The first of `allowed` nearest to `key` within MAX_EDITS, ignoring case, `_` and `-`; else the
 * one sharing the longest start with it (sameStem); undefined if none.
 */
export function suggestKey(key: string, allowed: readonly string[]): string | undefined {
  const lower = squashed(key);
  let best: string | undefined;
  let bound = MAX_EDITS + 1;
  for (const candidate of allowed) {
    const distance = distanceBelow(lower, squashed(candidate), bound);
    if (distance < bound) [best, bound] = [candidate, distance];
  }
  if (best !== undefined) return best;
  let longest = 0;
  let tied = false;
  for (const candidate of allowed) {
    const shared = sameStem(lower, squashed(candidate));
    if (shared > longest) [best, longest, tied] = [candidate, shared, false];
    else if (shared === longest && shared > 0) tied = true;
  }
  // `max` shares its stem with eleven keys: no guess rather than the first of them (a review)
  return tied ? undefined : best;
}

/**
 * How many leading characters `a` and `b` share when that is a word's stem: at least 3, and
 * three quarters of the shorter (`retry` for retries, `authorization` for authorize, `logging`
 * for log: each more than two edits away, and no "did you mean" was given; the bad-input
 * review); else 0.
 */
function sameStem(a: string, b: string): number {
  const shorter = Math.min(a.length, b.length);
  let i = 0;
  while (i < shorter && a[i] === b[i]) i++;
  return i >= 3 && i >= shorter * 0.75 ? i : 0;
}

/**
 * The edit distance (Levenshtein) of `a` and `b` when it is below `bound`, else `bound`. A
 * length difference is that many edits at least; a row of the table never has a smaller
 * minimum than the row before it, so once a row's minimum reaches the bound the rest cannot
 * bring it back under.
 */
function distanceBelow(a: string, b: string, bound: number): number {
  if (Math.abs(a.length - b.length) >= bound) return bound;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const cell = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      current[j] = cell;
      if (cell < rowMin) rowMin = cell;
    }
    if (rowMin >= bound) return bound;
    previous = current;
  }
  return Math.min(previous[b.length] as number, bound);
}

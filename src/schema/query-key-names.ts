// The parameter names servers behind read a query key as, beyond the key itself: the OpenAPI
// check (query-values.ts) refuses a key that one of them reads as a checked parameter, since
// the check would not hold the value the app gets. Each reading below was seen letting a value
// past the check (a review, with qs and PHP's parse_str run on the keys):
// - brackets after the name, `limit[]` or `limit[x]`: qs (Express's default), PHP, Rack;
// - a leading bracket pair, `[limit]`: qs drops it (req.query.limit); Rack 2 drops any leading
//   `[` and `]` and reads the first run of other characters (`]]limit]` is limit);
// - a `[` never closed, `per[page`: PHP reads it as `_` (per_page);
// - a NUL, `limit%00x`: PHP's names are C strings, cut there (limit).
// Case, `.`, spaces and leading spaces are folded by the caller (fold(), query-values.ts).
// A declared name with brackets (`ids[]`, `page[size]`, PHP-style APIs) is read as qs and PHP
// nest it (keyPath): `ids[0]`, `ids[x]`, `ids` and `page[size]x` all land in what the app reads
// as ids or page.size (readsInto).

/** The names `key` (decoded) may be read as other than itself; a few strings, made only for a key that is not a checked name as sent. */
export function keyReadings(key: string): string[] {
  const name = beforeNul(key);
  const readings = [name];
  const bracket = name.indexOf('[');
  if (bracket > 0) readings.push(name.slice(0, bracket));
  // Rack 2: leading brackets dropped, then the first run of characters that are not brackets;
  // for `[limit]` and `[limit][x]` this is also qs's reading
  const rack = /^[[\]]*([^[\]]+)/.exec(name);
  if (rack !== null && rack[1] !== name) readings.push(rack[1] as string);
  // PHP: a `[` with no `]` after it is no index; it and any later `[` are read as `_`
  if (bracket !== -1 && name.indexOf(']', bracket) === -1) readings.push(name.replace(/\[/g, '_'));
  return readings;
}

/** A key as PHP reads its name: a C string, cut at a NUL. */
function beforeNul(key: string): string {
  const nul = key.indexOf('\0');
  return nul === -1 ? key : key.slice(0, nul);
}

/**
 * A name with brackets as PHP nests it: the name before the first `[`, then each bracketed
 * segment in order (`page[size][]` is page, size, ''), up to the first text outside brackets,
 * which it drops (`page[size]x` is page[size]). A name with no `[` after its first character is
 * itself. Declared names are read so, once per operation.
 */
export function keyPath(key: string): string[] {
  const bracket = key.indexOf('[');
  if (bracket <= 0) return [key];
  const path = [key.slice(0, bracket)];
  const segment = /\[([^[\]]*)\]/y;
  segment.lastIndex = bracket;
  for (let found = segment.exec(key); found !== null; found = segment.exec(key)) path.push(found[1] as string);
  return path;
}

/** qs's default depth: segments past it are one more key, which no declared path reaches. */
const QS_DEPTH = 5;

/**
 * The paths a key (decoded) is nested into by PHP (keyPath, cut at a NUL), by qs (the text
 * before the first whole `[..]` group, or that group when nothing comes before it, then every
 * later group, text between them skipped: `[page]x[size]` is page, size) and by Rack 2 (every
 * run of characters that are not brackets, and '' for a trailing `[]`: `]ids[]` is ids, '').
 * Only for a key whose plain readings matched no checked name, on an operation with a
 * declared name that has brackets.
 */
export function keyPaths(key: string): string[][] {
  const php = keyPath(beforeNul(key));
  const paths = [php];
  const first = /\[[^[\]]*\]/.exec(key);
  if (first !== null) {
    const qs = first.index > 0 ? [key.slice(0, first.index)] : [];
    const group = /\[([^[\]]*)\]/g;
    group.lastIndex = first.index;
    for (let found = group.exec(key), depth = 0; found !== null && depth < QS_DEPTH; found = group.exec(key), depth++) qs.push(found[1] as string);
    if (qs.length > 0) paths.push(qs);
  }
  const runs = key.match(/[^[\]]+/g);
  if (runs !== null) paths.push(key.endsWith('[]') ? [...runs, ''] : runs);
  return paths;
}

/**
 * Whether a key of path `key` lands where a declared name of path `declared` does, their names
 * already found the same (folded): on each segment both have, the same text, or `[]` in the
 * declared one (an array takes any index; a key's `[]` makes a list, not a named member).
 * `ids` and `ids[7]` land in a declared `ids[]`; `page[size][]` in `page[size]`;
 * `page[number]`, `page` and `page[]` not in `page[size]`.
 */
export function readsInto(key: readonly string[], declared: readonly string[]): boolean {
  // qs reads a run of `[]` as one (`x[][][y]` is x[][y]: a list of objects): compared so
  const path = key.filter((segment, i) => segment !== '' || key[i - 1] !== '');
  for (let i = 1; i < Math.min(path.length, declared.length); i++) {
    if (declared[i] !== '' && declared[i] !== path[i]) return false;
  }
  // a key that stops short lands where the declared one does only if what it stops at is an
  // array (`ids` in `ids[]`: qs reads ids as the key's value); `page` is not page.size
  return path.length >= declared.length || declared[path.length] === '';
}

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

/** The names `key` (decoded) may be read as other than itself; a few strings, made only for a key that is not a checked name as sent. */
export function keyReadings(key: string): string[] {
  const nul = key.indexOf('\0');
  const name = nul === -1 ? key : key.slice(0, nul);
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

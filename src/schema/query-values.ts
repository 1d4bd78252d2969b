// A request's query as the OpenAPI check reads it: the declared parameters' values, ready for
// the operation's query validator (src/schema/spec.ts), read the way every server behind might
// read them. Servers disagree: which copy of a repeated parameter counts (Django and Rails the
// last, Express an array), whether `limit[]`, `LIMIT` or `per.page` is a declared `limit` or
// `per_page` (Express's default query parser qs, PHP and Rack read brackets; ASP.NET ignores
// case; PHP reads `.` and spaces as `_`), and whether `;` separates
// parameters (Rack 2, Go before 1.17, Python before 3.9.2). Any reading the check does not
// hold would let a value the spec forbids reach such an app unchecked, so each is either
// refused (a spelling with no meaning in OpenAPI) or checked too (the `;` reading).

import { clip } from '../clip.js';
import { keyPath, keyPaths, keyReadings, readsInto } from './query-key-names.js';
import type { CompiledOperation } from './operation.js';
import { MAX_QUOTED } from './violations.js';

/** One way to read a query: its text with `&` as the only separator, and what to add to a violation's message. */
export interface QueryReading {
  readonly query: string;
  readonly note: string;
}

/**
 * The readings a query must pass: as sent, and, when it holds a `;`, with `;` read as `&`
 * (`?q=x;limit=1000` is q=`x;limit=1000` to URLSearchParams, limit=1000 to Rack 2).
 */
export function queryReadings(query: string): QueryReading[] {
  const readings: QueryReading[] = [{ query, note: '' }];
  if (query.indexOf(';') !== -1) readings.push({ query: query.replace(/;/g, '&'), note: ' (with ; read as &, as Rack 2 and Go before 1.17 read it)' });
  return readings;
}

/**
 * The declared query parameters' values (every value of an array one); a string: the
 * violation's message, for a scalar parameter given more than once (checking one copy would
 * let the other through unchecked) or a declared one spelled as another server reads it.
 */
export function queryValues(op: CompiledOperation, query: string): Record<string, unknown> | string {
  const values: Record<string, unknown> = {};
  if (query === '') return values;
  const search = new URLSearchParams(query);
  const spelling = misspelledParameter(op, search);
  if (spelling !== undefined) return spelling;
  const escape = query.indexOf('%') === -1 ? undefined : undecodableEscape(op, query);
  if (escape !== undefined) return escape;
  for (const p of op.queryParams) {
    const all = search.getAll(p.name);
    if (all.length === 0) continue;
    if (p.commaSeparated) {
      if (all.length > 1) return onceOnly(p.name); // explode: false: the items come in one value
      values[p.name] = encodedCommaItems(query, p.name);
    } else if (p.array) values[p.name] = all;
    else if (all.length > 1) return onceOnly(p.name);
    else values[p.name] = all[0];
  }
  return values;
}

function onceOnly(name: string): string {
  return `query/${name}: must be given once (it is not an array)`;
}

/** Each operation's checked parameter names, as declared and by their folded form (built on first use). */
interface CheckedNames {
  readonly exact: ReadonlySet<string>;
  readonly folded: ReadonlyMap<string, string>;
  /** The declared names with brackets, by their first segment folded: a key's paths are looked up there, not compared with each. */
  readonly bracketed: ReadonlyMap<string, ReadonlyArray<{ readonly name: string; readonly path: readonly string[] }>>;
}

const NAMES = new WeakMap<CompiledOperation, CheckedNames>();

/**
 * A key that is not a checked parameter's name but that some server reads as one: the name
 * in another case (ASP.NET binds `LIMIT` to `limit`), with brackets (`limit[]=1000`,
 * `limit[x]=1000`, `[limit]=1000`: qs, Express's default, makes req.query.limit an array or object of them;
 * PHP and Rack as well; query-key-names.ts), or with `.` or a space for `_` (PHP, so Laravel and Symfony, reads
 * `per.page` and `per page` as per_page), or nested where a declared name with brackets lands
(`ids[0]` or `ids` for `ids[]`, `page[size]x` for `page[size]`). None of these spellings means anything in the styles
 * checked here, so the check cannot hold its value: refused. Keys of parameters left alone
 * (deepObject's `filter[color]`) are not checked names, and pass.
 */
function misspelledParameter(op: CompiledOperation, search: URLSearchParams): string | undefined {
  if (op.queryParams.length === 0) return undefined;
  let names = NAMES.get(op);
  if (names === undefined) {
    const bracketed = new Map<string, Array<{ name: string; path: string[] }>>();
    for (const p of op.queryParams) {
      if (p.name.indexOf('[') <= 0) continue;
      const path = keyPath(p.name);
      const base = fold(path[0] as string);
      bracketed.set(base, [...(bracketed.get(base) ?? []), { name: p.name, path }]);
    }
    names = { exact: new Set(op.queryParams.map((p) => p.name)), folded: new Map(op.queryParams.map((p) => [fold(p.name), p.name])), bracketed };
    NAMES.set(op, names);
  }
  for (const key of search.keys()) {
    if (names.exact.has(key)) continue;
    const name = spelledName(names, key);
    if (name !== undefined) return `query/${name}: is given as ${clip(JSON.stringify(key).slice(1, -1), MAX_QUOTED)}, which some servers read as ${name} (brackets: qs, PHP, Rack; another case: ASP.NET; . or space for _, an unclosed [ or a NUL: PHP); send it as ${name}`;
  }
  return undefined;
}

/** The checked name some server reads `key` as (folded, or nested where a declared name with brackets lands), or undefined. */
function spelledName(names: CheckedNames, key: string): string | undefined {
  for (const reading of keyReadings(key)) {
    const name = names.folded.get(fold(reading));
    if (name !== undefined) return name;
  }
  if (names.bracketed.size === 0) return undefined;
  for (const path of keyPaths(key)) {
    const declared = names.bracketed.get(fold(path[0] as string))?.find((d) => readsInto(path, d.path));
    if (declared !== undefined) return declared.name;
  }
  return undefined;
}

/**
 * A checked parameter whose value holds a percent-escape that does not decode as UTF-8
 * (`%FF`), or a stray `%` beside an escape: URLSearchParams reads U+FFFD (`maxLength: 4`
 * passes `%FF%FF%FF%FF`), qs (Express) keeps the whole value undecoded (12 characters), Go
 * keeps the raw bytes. The check cannot hold what the app reads: refused. A value with a
 * stray `%` and no escape (`100%`) reads the same everywhere and passes.
 */
function undecodableEscape(op: CompiledOperation, query: string): string | undefined {
  for (const pair of query.split('&')) {
    if (!WELL_FORMED_ESCAPE.test(pair)) continue;
    try {
      decodeURIComponent(pair.replace(/\+/g, ' '));
      continue;
    } catch {
      // URIError: an escape that is not UTF-8, or a stray %
    }
    const eq = pair.indexOf('=');
    const name = decodeQueryPart(eq === -1 ? pair : pair.slice(0, eq));
    if (op.queryParams.some((p) => p.name === name)) return `query/${clip(name, MAX_QUOTED)}: holds a %-escape that is not UTF-8, or a stray % (servers read it differently: URLSearchParams as U+FFFD, qs undecoded); encode a % as %25`;
  }
  return undefined;
}

const WELL_FORMED_ESCAPE = /%[0-9A-Fa-f]{2}/;

/** A name as the most lenient of those servers compares it: lower case, leading spaces dropped, `.` and spaces read as `_` (PHP). */
export function fold(name: string): string {
  return name.toLowerCase().replace(/^ +/, '').replace(/[. ]/g, '_');
}

/**
 * The items of a query parameter given once with `explode: false`, split at the commas of the
 * query as sent and then decoded: `a%2Cb,c` is two items, `a,b` and `c` (a comma that is data
 * is percent-encoded; splitting the decoded value would make it a delimiter).
 */
function encodedCommaItems(query: string, name: string): string[] {
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const raw = eq === -1 ? pair : pair.slice(0, eq);
    if (decodeQueryPart(raw) !== name) continue;
    return (eq === -1 ? '' : pair.slice(eq + 1)).split(',').map(decodeQueryPart);
  }
  return [];
}

/** Decoded as URLSearchParams decodes (`+` a space, lenient with a stray `%`). */
function decodeQueryPart(text: string): string {
  return new URLSearchParams(`v=${text}`).get('v') ?? '';
}

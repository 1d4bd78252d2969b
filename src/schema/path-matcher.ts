// Finds the operation of a request: method + path against the spec's path templates. Templates
// without parameters are one Map lookup; the others are regular expressions tried most
// literal first (OpenAPI: `/orders/mine` wins over `/orders/{id}`). Built once per spec.
// Both sides are compared in one canonical form (canonicalPath): the literal parts of a
// template must match what the app behind will read, not the bytes as sent, or
// `/orders/%6Dine` was checked as `/orders/{id}` and reached an app that serves it as
// `/orders/mine`, past that operation's own rules.

import './linear-regexps.js'; // templates' regexes fall back to V8's linear-time engine too
import { canonicalPath } from '../http/canonical-path.js';

export interface Template<T> {
  readonly template: string;
  readonly method: string;
  readonly value: T;
}

export interface PathMatch<T> {
  readonly value: T;
  /** Path parameters by name, percent-decoded; undefined when the template has none. */
  readonly params: Record<string, string> | undefined;
  /** The first parameter whose %-escapes do not decode as UTF-8 (kept as sent in params). */
  readonly undecodable?: string;
  /**
   * A segment with two parameters or more (`{name}-{year}`) split as Express 4 up to 4.21.1
   * splits it (path-to-regexp 0.1.10), when that differs: the matcher's captures are greedy
   * (`a-1999-2020` is `a-1999` and `2020`), Express's stop at the first separator (`a` and
   * `1999-2020`), as chi's do, and one after a `.` holds no dot (`{name}.{ext}`:
   * `archive.tar.gz` is `archive.tar` and `gz` to both). Express 4.21.2 (path-to-regexp 0.1.12)
   * keeps the separator out of the parameter after it, which reads `-` as the greedy split does.
   * Its own undecodable, if any.
   */
  readonly lazySplit?: { readonly params: Record<string, string>; readonly undecodable?: string };
}

interface Pattern<T> {
  readonly regex: RegExp;
  /** The same template as Express 4.21.1 and older read it, for one with two parameters or more in a segment. */
  readonly lazyRegex: RegExp | undefined;
  readonly names: readonly string[];
  readonly value: T;
  readonly literalLength: number;
  /** Its place among its method's templates, most literal first: the order they are tried in. */
  rank: number;
}

/**
 * One method's templates with parameters, by their first segment when it is literal (most
 * are: `/orders/{id}`), the rest (`/{tenant}/orders`) apart: a path tries only those that can
 * match its first segment, not every template (10,000 of them cost an unmatched request 3.4 ms).
 */
interface MethodPatterns<T> {
  readonly byFirstSegment: Map<string, Pattern<T>[]>;
  readonly anyFirstSegment: Pattern<T>[];
}

const PARAM = /\{([^}/]+)\}/g;

export class PathMatcher<T> {
  /** path -> method -> value, for templates without parameters. */
  private readonly exact = new Map<string, Map<string, T>>();
  /** method -> patterns, by first segment; each list most literal first. */
  private readonly patterns = new Map<string, MethodPatterns<T>>();

  constructor(templates: Iterable<Template<T>>) {
    const all = new Map<string, Pattern<T>[]>();
    const firstSegments = new Map<Pattern<T>, string>();
    for (const { template: written, method, value } of templates) {
      // a template's own escapes compare as a request's do (`/a%2fb` is `/a%2Fb`)
      const template = canonicalPath(written);
      const names: string[] = [];
      let source = '';
      let lazySource = '';
      let last = 0;
      for (const m of template.matchAll(PARAM)) {
        const literal = escape(template.slice(last, m.index));
        source += `${literal}([^/]+)`;
        // Express up to 4.21.1: lazy, and no dot in a parameter that follows a `.`
        lazySource += literal.endsWith('\\.') ? `${literal}([^/.]+?)` : `${literal}([^/]+?)`;
        names.push(m[1] as string);
        last = (m.index as number) + m[0].length;
      }
      if (names.length === 0) {
        let methods = this.exact.get(template);
        if (!methods) this.exact.set(template, (methods = new Map()));
        methods.set(method, value);
        continue;
      }
      source += escape(template.slice(last));
      lazySource += escape(template.slice(last));
      const lazyRegex = /\}[^/]*\{/.test(template) ? new RegExp(`^${lazySource}$`) : undefined;
      const list = all.get(method) ?? [];
      list.push({ regex: new RegExp(`^${source}$`), lazyRegex, names, value, literalLength: template.replace(PARAM, '').length, rank: 0 });
      all.set(method, list);
      firstSegments.set(list[list.length - 1] as Pattern<T>, firstSegmentOf(template));
    }
    for (const [method, list] of all) {
      list.sort((a, b) => b.literalLength - a.literalLength); // stable: ties keep the spec's order
      const indexed: MethodPatterns<T> = { byFirstSegment: new Map(), anyFirstSegment: [] };
      list.forEach((pattern, rank) => {
        pattern.rank = rank;
        const first = firstSegments.get(pattern) as string;
        if (first.includes('{')) indexed.anyFirstSegment.push(pattern);
        else {
          const bucket = indexed.byFirstSegment.get(first);
          if (bucket) bucket.push(pattern);
          else indexed.byFirstSegment.set(first, [pattern]);
        }
      });
      this.patterns.set(method, indexed);
    }
  }

  /** `path` as sent (raw, percent-encoded); parameters come back decoded once. */
  match(method: string, raw: string): PathMatch<T> | undefined {
    return this.matchCanonical(method, canonicalPath(raw));
  }

  /** `path` in canonical form already (canonicalPath): a caller that matches several readings of one path puts it in that form once. */
  matchCanonical(method: string, path: string): PathMatch<T> | undefined {
    const exact = this.exact.get(path)?.get(method);
    if (exact !== undefined) return { value: exact, params: undefined };
    const indexed = this.patterns.get(method);
    if (indexed === undefined) return undefined;
    // the two candidate lists, merged in rank order: the same order as trying all of them
    const literal = indexed.byFirstSegment.get(firstSegmentOf(path)) ?? NONE;
    const any = indexed.anyFirstSegment;
    let i = 0;
    let j = 0;
    while (i < literal.length || j < any.length) {
      const a = literal[i];
      const b = any[j];
      const pattern = (b === undefined || (a !== undefined && a.rank < b.rank) ? literal[i++] : any[j++]) as Pattern<T>;
      const m = pattern.regex.exec(path);
      if (m === null) continue;
      const { params, undecodable } = paramsOf(pattern.names, m);
      const matched: PathMatch<T> = undecodable === undefined ? { value: pattern.value, params } : { value: pattern.value, params, undecodable };
      // Express's form of the same template: its captures may differ; or it may not match at all
      // (a dot in a parameter after a `.` that no lazy parameter before can take), a path
      // Express does not route, so nothing it could read otherwise
      const lazy = pattern.lazyRegex?.exec(path);
      if (lazy == null || lazy.every((capture, k) => capture === m[k])) return matched;
      return { ...matched, lazySplit: paramsOf(pattern.names, lazy) };
    }
    return undefined;
  }
}

function paramsOf(names: readonly string[], m: RegExpExecArray): { params: Record<string, string>; undecodable?: string } {
  const params: Record<string, string> = {};
  let undecodable: string | undefined;
  for (let k = 0; k < names.length; k++) {
    const name = names[k] as string;
    const decoded = decode(m[k + 1] as string);
    if (decoded === undefined) undecodable ??= name;
    params[name] = decoded ?? (m[k + 1] as string);
  }
  return undecodable === undefined ? { params } : { params, undecodable };
}

const NONE: readonly never[] = [];

/** The first segment of a canonical path or template: `orders` of `/orders/42` ('' for `/`). */
function firstSegmentOf(path: string): string {
  const end = path.indexOf('/', 1);
  return end === -1 ? path.slice(1) : path.slice(1, end);
}

/**
 * What other apps read a path (canonical form) as: each segment without its `;params`
 * (Tomcat, Spring and Jetty drop them: `/orders/mine;x=1` is /orders/mine to them, an id to
 * others), and the path up to a decoded `?` or `#` (an app that decodes the path and then parses
 * it as a URL: `/orders/mine%3F` is /orders/mine to it). None for a path that has neither.
 */
export function otherReadings(path: string): string[] {
  const readings: string[] = [];
  if (path.indexOf(';') !== -1) readings.push(path.replace(/;[^/]*/g, ''));
  const cut = path.search(/[?#]/);
  if (cut !== -1) readings.push(path.slice(0, cut));
  return readings;
}

/**
 * The path (canonical form) as an app reads it that takes an encoded slash, or a backslash, for
 * a `/`: WSGI and CGI apps (Flask, Django) are handed the path decoded, gorilla/mux routes on
 * the decoded path, some read `\` as `/`. `/orders/1%2Fcancel` is `/orders/1/cancel` to them,
 * one `{id}` to the matcher. Undefined for a path that has neither.
 */
export function slashReading(path: string): string | undefined {
  if (path.indexOf('%2F') === -1 && path.indexOf('\\') === -1) return undefined;
  return path.replace(/%2F|\\/g, '/');
}

/**
 * The path (canonical form) as apps read it that take a last segment's `.ext` for a format:
 * Rails routes every path with an optional `(.:format)`, Spring MVC matched suffix patterns
 * (`mine.*`, so from the first dot) by default before 5.3. `/public/report.json` is
 * `/public/report` to them, `{name}` to the matcher. Cut at the last dot and at the first (the
 * same one when there is one); none when the last segment has no dot after its first character.
 */
export function formatReadings(path: string): string[] {
  const segment = path.lastIndexOf('/') + 1;
  const first = path.indexOf('.', segment + 1);
  if (first === -1) return [];
  const last = path.lastIndexOf('.');
  return last === first ? [path.slice(0, last)] : [path.slice(0, last), path.slice(0, first)];
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The segment decoded once; undefined when an escape is not UTF-8 (`%80`, `%C3%2F`). */
function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

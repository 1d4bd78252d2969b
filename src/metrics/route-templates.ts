// Turns request paths into bounded `route` label values: a configured template when one
// matches; otherwise a learned template where identifier-like segments (numbers, UUIDs, long
// hex, token-like strings) become {id}; at most `cap` distinct routes per direction and peer,
// then __other__; a learned template longer than MAX_TEMPLATE is __other__ too (each route is
// a label value repeated in every series of every request family: 100 routes of 2.7 KB made
// /metrics 46 MB). Query strings never reach a label. A path is labelled in its canonical form
// (src/http/canonical-path.ts), as the OpenAPI matcher reads it: `/orders/%6Dine` is the
// `/orders/mine` its app serves, not a route of its own (nor 100 spellings of one route filling
// the cap). A brace the path itself carries stays encoded (`%7B`): only {id} and a configured
// template's parameters read as parameters, in labels and in the discovery document. A label
// is printable ASCII: any other character (a raw byte an HTTP/2 :path carries) is written %XX.

import { canonicalPath } from '../http/canonical-path.js';

export const OTHER_ROUTE = '__other__';
export const DEFAULT_ROUTE_CAP = 100;

const NUMERIC = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LONG_HEX = /^[0-9a-f]{16,}$/i;
const MAX_SEGMENT = 64;
/** The longest learned route label (characters); a longer path's is __other__. */
export const MAX_TEMPLATE = 128;
/** Paths longer than this are not remembered in the lookup cache (2,048 of 16 KB would be 32 MB). */
const MAX_CACHED_PATH = 256;

/** Random-looking: long enough, and mixing letters with digits (base64url ids, hashes, tokens). */
function isTokenLike(segment: string): boolean {
  if (segment.length < 16) return false;
  let digits = 0;
  let letters = 0;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) letters++;
  }
  return digits > 0 && letters > 0;
}

const BRACES = /[{}]/g;
/** Not printable ASCII: a raw byte an HTTP/2 :path may carry (0x80-0xFF, C1 controls among them). */
const NOT_PRINTABLE = /[^\x21-\x7e]/;
const NOT_PRINTABLE_ALL = /[^\x21-\x7e]/g;

/** `%XX` of each byte: the char's latin1 byte (as HPACK carried it), else its UTF-8 bytes. */
function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(c);
}

function templateSegment(segment: string): string {
  if (segment === '') return segment;
  if (NUMERIC.test(segment) || UUID.test(segment) || LONG_HEX.test(segment) || isTokenLike(segment) || segment.length > MAX_SEGMENT) return '{id}';
  // a label is printable ASCII, as the canonical form writes such a byte: a raw 0x9B (CSI)
  // would reach /metrics and every dashboard as a terminal control
  const printable = NOT_PRINTABLE.test(segment) ? segment.replace(NOT_PRINTABLE_ALL, escapeChar) : segment;
  return printable.indexOf('{') === -1 && printable.indexOf('}') === -1 ? printable : printable.replace(BRACES, (brace) => (brace === '{' ? '%7B' : '%7D'));
}

/** The path without its query string, in canonical form. */
function barePath(path: string): string {
  const query = path.indexOf('?');
  return canonicalPath(query === -1 ? path : path.slice(0, query));
}

/**
 * A gRPC method's path: /package.Service/Method, protobuf identifiers (the package optional).
 * Its two segments name a service and a method, never an id: `acme.orders.v1.Orders` mixes
 * letters and digits over 16 characters, and the token rule would make every versioned
 * service `{id}` (/acme.orders.v1.Orders/Get and /acme.payments.v1.Payments/Get one route).
 */
const GRPC_METHOD_PATH = /^\/[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\/[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The learned template of a path (no query string, canonical form, identifiers replaced); of a
 * gRPC request's (`grpc`) /package.Service/Method path, that path as it is.
 */
export function learnedTemplate(path: string, grpc = false): string {
  const bare = barePath(path);
  if (grpc && GRPC_METHOD_PATH.test(bare)) return bare;
  if (bare === '/' || bare === '') return '/';
  return bare.split('/').map(templateSegment).join('/');
}

interface ConfiguredTemplate {
  readonly template: string;
  /** null where the segment is a {parameter}. */
  readonly segments: ReadonlyArray<string | null>;
}

function compile(template: string): ConfiguredTemplate {
  // its literal parts in the canonical form the paths are compared in
  return { template, segments: template.split('/').map((s) => (/^\{[^}]*\}$/.test(s) ? null : canonicalPath(s))) };
}

function matches(configured: ConfiguredTemplate, parts: readonly string[]): boolean {
  if (configured.segments.length !== parts.length) return false;
  for (let i = 0; i < parts.length; i++) {
    const expected = configured.segments[i];
    if (expected !== null && expected !== parts[i]) return false;
    if (expected === null && parts[i] === '') return false;
  }
  return true;
}

/**
 * Paths remembered by all labelers of the process together. Each labeler (one per direction and
 * peer, up to 1,000 peers a direction) keeps its own lookup cache, so a budget per labeler alone
 * let a hub with many callers hold 1,000 × 2,048 paths of up to 256 characters (~600 MB). When
 * the whole is spent, the cache of the labeler adding starts afresh if it holds a fair part of
 * the budget, else the largest one does: one peer calling ever new paths empties its own, not
 * the others'; a steady set of paths refills at once, and the hot path stays one Map lookup.
 */
export class RouteCacheBudget {
  /** Paths held by the caches sharing this budget. */
  cached = 0;
  /** The caches holding paths (a labeler gone by reload is let go once its cache is the largest or cleared). */
  readonly caches = new Set<Map<string, string>>();
  /** A cache this large, adding when the budget is spent, starts afresh itself. */
  readonly fairPart: number;

  constructor(readonly limit = 16_384) {
    this.fairPart = limit / 16;
  }

  /** The budget is spent and the labeler adding holds little of it: the largest cache starts afresh, the others keep theirs. */
  clearLargest(): void {
    let largest: Map<string, string> | undefined;
    for (const cache of this.caches) {
      if (cache.size === 0) this.caches.delete(cache); // cleared by its own cap, or its labeler's gone
      else if (largest === undefined || cache.size > largest.size) largest = cache;
    }
    if (largest === undefined) return;
    this.cached -= largest.size;
    largest.clear();
    this.caches.delete(largest);
  }
}

/** The budget every labeler shares unless given another (tests give their own). */
const PROCESS_BUDGET = new RouteCacheBudget();

/** Route labels for one direction and peer: configured templates first, learned ones capped. */
export class RouteLabeler {
  private readonly configured: readonly ConfiguredTemplate[];
  private readonly learned = new Set<string>();
  // the same few paths repeat; remembering their answers keeps the hot path to one lookup
  private readonly cache = new Map<string, string>();
  private static readonly CACHE_LIMIT = 2048;

  /**
   * `learnedBefore`: the routes the peer's previous labeler learned (a reload that changed its
   * templates): their series stay on /metrics, so they count toward the cap here too; a fresh
   * set let each routes reload add another `cap` labels to the peer.
   */
  constructor(
    templates: readonly string[] = [],
    private readonly cap = DEFAULT_ROUTE_CAP,
    private readonly budget: RouteCacheBudget = PROCESS_BUDGET,
    learnedBefore?: RouteLabeler,
  ) {
    this.configured = templates.map(compile);
    if (learnedBefore) for (const route of learnedBefore.learned) this.learned.add(route);
  }

  /** Whether `route` is one of the configured templates (the operator bounds those, not the cap). */
  isConfigured(route: string): boolean {
    return this.configured.some((c) => c.template === route);
  }

  /** `grpc`: the request is a gRPC call (its path names a service and a method, see learnedTemplate). */
  routeOf(path: string, grpc = false): string {
    // a gRPC call's route may differ from a plain request's with the same path: a key of its own
    const key = grpc ? `grpc ${path}` : path;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const route = this.resolve(path, grpc);
    if (path.length > MAX_CACHED_PATH) return route;
    // the budget spent: the labeler adding paths starts afresh if it holds a fair part of it (a
    // peer calling ever new paths is the one adding), else the largest cache does
    const budget = this.budget;
    if (budget.cached >= budget.limit && this.cache.size < budget.fairPart) budget.clearLargest();
    if (budget.cached >= budget.limit || this.cache.size >= RouteLabeler.CACHE_LIMIT) {
      budget.cached -= this.cache.size;
      this.cache.clear();
    }
    if (this.cache.size === 0) budget.caches.add(this.cache);
    this.cache.set(key, route);
    budget.cached++;
    return route;
  }

  /** How many paths this labeler remembers now (its share of the process-wide budget). */
  get cachedPaths(): number {
    return this.cache.size;
  }

  private resolve(path: string, grpc: boolean): string {
    const bare = barePath(path);
    if (this.configured.length > 0) {
      const parts = bare.split('/');
      for (const configured of this.configured) if (matches(configured, parts)) return configured.template;
    }
    const template = learnedTemplate(bare, grpc);
    if (template.length > MAX_TEMPLATE) return OTHER_ROUTE;
    if (this.learned.has(template)) return template;
    if (this.learned.size >= this.cap) return OTHER_ROUTE;
    this.learned.add(template);
    return template;
  }
}

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Methods outside the standard set would be an unbounded label: they become OTHER. */
export function methodLabel(method: string): string {
  return STANDARD_METHODS.has(method) ? method : 'OTHER';
}

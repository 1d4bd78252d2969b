// A loaded spec, ready for traffic: every operation compiled once, a matcher over the path
// templates, and the per-request check. A request without a JSON body schema costs one match
// and the parameter validators of its operation; a body is only asked for when the matched
// operation validates one (see SchemaCheck.body).

import type { IncomingHttpHeaders } from 'node:http';
import type { ValidateFunction } from 'ajv';
import { NO_BACKTRACKING_PATTERNS, type BacktrackingPatterns } from './backtracking-patterns.js';
import { compilersFor } from './compilers.js';
import { draft07Bounds } from './openapi30.js';
import { compileOperation, isGrpcType, isJsonType, readsAsJson, type CompiledOperation } from './operation.js';
import { mediaFor, mediaType } from './media-for.js';
import { basePathsOf, nearestServers } from './server-bases.js';
import { OperationIndex, type BaseMatch, type ServedOperation } from './operation-index.js';
import { canonicalPath } from '../http/canonical-path.js';
import { formatReadings, otherReadings, slashReading } from './path-matcher.js';
import { queryReadings, queryValues } from './query-values.js';
import { pathOverride } from './path-override.js';
import { methodOverride } from './method-override.js';
import { underscoreAlias } from './header-aliases.js';
import { parameterProblem } from './parameter-check.js';
import { onlyUtf8 } from './media-charset.js';
import { mediaParameters, notOneMediaType } from './media-syntax.js';
import { SpecError, pointerOf } from './spec-error.js';
import { loadSpecDocument, type OpenApiDocument } from './spec-loader.js';
import { pathProblem } from '../http/request-target.js';
import { clip } from '../clip.js';
import { MAX_QUOTED, type Violation } from './violations.js';
import type { BodyCheck } from './json-body.js';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** What the check of one request found; `body` set: validate the buffered body with it before forwarding. */
export interface SchemaCheck {
  /** undefined: no operation matches (the violation says undocumented_operation). */
  readonly operation: CompiledOperation | undefined;
  /**
   * The route label: the operation's template under the servers' base path the request came
   * by (`/v1/orders/{id}`), a path as a learned route is, so `/v1/health` and an unmatched
   * `/health` are two routes; undefined when no operation matches.
   */
  readonly route: string | undefined;
  readonly violation: Violation | undefined;
  /** What the body is held to once it came (json-body.ts BodyCheck); undefined: nothing. */
  readonly body: BodyCheck | undefined;
}

/** The longest the compiler holds the event loop at a time. */
const COMPILE_SLICE_MS = 20;

export class CompiledSpec {
  readonly operations: readonly CompiledOperation[];
  private readonly index: OperationIndex;

  private constructor(
    readonly file: string,
    /** The dereferenced document compiled here: workers > 1 compile what the primary loaded, not the file again. */
    readonly document: OpenApiDocument,
    /** Each operation with the path prefixes of its nearest `servers` (`/v1`; '' for the root). */
    served: readonly ServedOperation[],
    /** Patterns the linear-time engine cannot run, found when the file was read (backtracking-patterns.ts); none for a document compiled as received. */
    readonly backtracking: BacktrackingPatterns,
    /** The files the spec's $refs named, as read (a reload waits for them to stand); none for a document compiled as received. */
    readonly refsRead: readonly string[],
  ) {
    this.operations = served.map((s) => s.operation);
    this.index = new OperationIndex(served);
  }

  /** Reads, validates, dereferences and compiles the spec; a SpecError says where it is wrong. */
  static async load(file: string): Promise<CompiledSpec> {
    const { document, backtracking, refsRead } = await loadSpecDocument(file);
    return CompiledSpec.compile(file, document, backtracking, refsRead);
  }

  /**
   * Compiles every operation. Ajv compiles synchronously, and a spec of thousands of operations
   * takes seconds (20,000: ~17 s): the event loop gets a turn every COMPILE_SLICE_MS, so traffic
   * and the admin port go on while a reload (or a worker) compiles.
   */
  static async compile(file: string, doc: OpenApiDocument, backtracking: BacktrackingPatterns = NO_BACKTRACKING_PATTERNS, refsRead: readonly string[] = []): Promise<CompiledSpec> {
    const version = doc.openapi ?? '3.0.0';
    if (version.startsWith('3.0')) draft07Bounds(doc.paths);
    const compilers = compilersFor(version);
    const served: ServedOperation[] = [];
    let sliceStart = performance.now();
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      if (item === undefined || item === null) continue;
      if (!template.startsWith('/')) throw new SpecError(file, pointerOf('paths', template), 'a path template must start with /');
      // OpenAPI reads {} as a parameter, our matcher would read it as text: neither is what was meant
      if (template.includes('{}')) throw new SpecError(file, pointerOf('paths', template), 'a path parameter without a name ({}): name it, as in /items/{id}');
      const shared = Array.isArray(item.parameters) ? item.parameters : [];
      for (const method of METHODS) {
        const operation = item[method];
        if (operation === undefined || operation === null || typeof operation !== 'object') continue;
        const bases = basePathsOf(nearestServers(operation, item, doc));
        served.push({ operation: compileOperation(compilers, file, template, method.toUpperCase(), operation as Record<string, unknown>, shared), bases: bases.length > 0 ? bases : [''] });
        if (performance.now() - sliceStart >= COMPILE_SLICE_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
    }
    return new CompiledSpec(file, doc, served, backtracking, refsRead);
  }

  /** The operation a request is for, with no validation. */
  operationOf(method: string, path: string): CompiledOperation | undefined {
    return this.match(method, canonicalPath(path))?.value;
  }

  /** Every operation by the route its calls get: its template under each of its servers' base paths. */
  routes(): Array<{ readonly method: string; readonly route: string }> {
    return this.index.routes();
  }

  /**
   * Under its servers' base path, if any (operation-index.ts). `canonical`: the path in
   * canonical form, put in it once per check by the caller (a pass costs time in proportion to
   * the escapes, and a check matches up to five readings: it was made about ten times, 4.5-5.2
   * ms of CPU for a 14 KB path of escapes).
   */
  private match(method: string, canonical: string, folded = false): BaseMatch | undefined {
    return this.index.match(method, canonical, folded);
  }

  /**
   * Holds one request's head against the spec: operation, path, query and header parameters,
   * then content type. `hasBody`: the request carries a body (Content-Length > 0, chunked, or
   * an HTTP/2 stream left open).
   */
  check(method: string, path: string, query: string, headers: IncomingHttpHeaders, hasBody: boolean): SchemaCheck {
    // a path an app could read as another (`/orders/..%2Fadmin` matches `/orders/{id}`, and a
    // normalising upstream serves /admin) is not the operation it seems to be: the inbound
    // refuses such paths before this, the outbound's calls only meet them here
    const unplain = pathProblem(path);
    if (unplain !== undefined) return { operation: undefined, route: undefined, violation: { kind: 'path', message: `path: ${clip(path, MAX_QUOTED)} is not a plain absolute path: ${unplain}` }, body: undefined };
    const canonical = canonicalPath(path);
    const match = this.match(method, canonical);
    if (match === undefined) return { operation: undefined, route: undefined, violation: { kind: 'undocumented_operation', message: `${clip(`${method} ${path}`, MAX_QUOTED)} is not an operation of the API` }, body: undefined };
    const op = match.value;
    const route = match.base + op.template;
    const misread = this.misreading(method, path, canonical, op);
    if (misread !== undefined) return violation(op, route, 'path', misread);
    const override = methodOverride(method, query, headers, op) ?? pathOverride(headers, op);
    if (override !== undefined) return violation(op, route, override.kind, override.message);
    if (op.pathParams !== undefined) {
      // `%80%2Fadmin` left undecoded would be checked as the text `%2F`, while WSGI apps (read
      // as latin-1), gorilla/mux and Go decode it to a `/` and a byte: the check cannot hold
      // what the app reads (the query's values are refused alike, query-values.ts)
      if (match.undecodable !== undefined) return violation(op, route, 'path', `path/${clip(match.undecodable, MAX_QUOTED)}: holds a %-escape that is not UTF-8 (servers read it differently); encode a % as %25`);
      const values = splitArrays(match.params ?? {}, op.arrayPathParams);
      // numbers as every server reads them, before the validator coerces them (parameter-check.ts)
      const problem = parameterProblem('path', op.pathParams, values, op.numeric.path);
      if (problem !== undefined) return violation(op, route, 'path', problem);
      // `{name}-{year}`: what Express (up to 4.21.1) hands the app for `a-1999-2020` (year
      // `1999-2020`, 1999 to parseInt; chi too) is held to the same rules as the greedy split
      const lazy = match.lazySplit;
      if (lazy !== undefined) {
        if (lazy.undecodable !== undefined) return violation(op, route, 'path', `path/${clip(lazy.undecodable, MAX_QUOTED)}: holds a %-escape that is not UTF-8 (servers read it differently); encode a % as %25`);
        const lazyProblem = parameterProblem('path', op.pathParams, splitArrays(lazy.params, op.arrayPathParams), op.numeric.path);
        if (lazyProblem !== undefined) return violation(op, route, 'path', `${lazyProblem} (as Express up to 4.21.1 reads ${clip(path, MAX_QUOTED)}, each parameter of a segment ending at the first separator)`);
      }
    }
    // a fragment hides the rest of the query from an app that drops it (`?x#&status=open`):
    // what is checked here would not be what it reads
    if (query.indexOf('#') !== -1) return violation(op, route, 'query', 'query: a # (a fragment) is not sent in a request; send it encoded, as %23');
    if (op.query !== undefined) {
      for (const reading of queryReadings(query)) {
        const values = queryValues(op, reading.query);
        if (typeof values === 'string') return violation(op, route, 'query', values + reading.note);
        const problem = parameterProblem('query', op.query, values, op.numeric.query);
        if (problem !== undefined) return violation(op, route, 'query', problem + reading.note);
      }
    }
    if (op.headers !== undefined) {
      const alias = underscoreAlias(headers, op.headerNames);
      if (alias !== undefined) return violation(op, route, 'header', alias);
      const values: Record<string, unknown> = {};
      for (const name of op.headerNames) if (headers[name] !== undefined) values[name] = headers[name];
      splitArrays(values, op.arrayHeaderNames);
      const problem = parameterProblem('header', op.headers, values, op.numeric.header);
      if (problem !== undefined) return violation(op, route, 'header', problem);
    }
    const body = op.body;
    if (body === undefined) return { operation: op, route, violation: undefined, body: undefined };
    if (!hasBody) return body.required ? violation(op, route, 'body', 'body: is required') : { operation: op, route, violation: undefined, body: undefined };
    const contentType = headers['content-type'];
    // `application/json, text/plain` is application/json to Rails and Rack, nothing to the ranges here
    const parameters = contentType === undefined ? [] : mediaParameters(contentType);
    if (parameters === undefined) return violation(op, route, 'content_type', notOneMediaType(contentType as string));
    const media = mediaFor(body.media, contentType);
    if (media === undefined) {
      const accepted = body.media.map((m) => m.range).join(', ');
      const sent = contentType === undefined ? 'no Content-Type' : `Content-Type ${contentType.split(';')[0]}`;
      const refused: Violation = { kind: 'content_type', message: `content_type: ${sent} is not accepted (send ${accepted})` };
      // no type, and no length to say a byte will come: an HTTP/2 stream left open or a
      // chunked body may end empty (Node's http2 client ends a bodiless POST with an empty
      // DATA frame), which is no body; refused only if a byte comes
      if (contentType === undefined && !(Number(headers['content-length']) > 0)) return { operation: op, route, violation: undefined, body: { emptyOnly: refused } };
      return violation(op, route, refused.kind, refused.message);
    }
    const type = mediaType(contentType as string);
    // a gRPC type is framing only under its own entry; elsewhere application/grpc+json is JSON (operation.ts isGrpcType)
    const jsonBody = readsAsJson(type) && !(media.range === type && isGrpcType(type));
    // a JSON body under an entry that carries no schema (`*/*: {}` or `text/json: {}` beside
    // application/json's): an app that reads it as JSON (ASP.NET and Spring read text/json and
    // +json types so) would act on a document application/json's schema refuses: held to it
    const validate =
      media.validate ??
      (media.validateJson !== undefined && jsonBody ? media.validateJson : undefined) ??
      (jsonBody ? body.media.find((m) => m.validate !== undefined && isJsonType(m.range))?.validate : undefined);
    // JSON is UTF-8 (RFC 8259 §8.1): a body validated as UTF-8 but read by the app in another
    // charset would be another document to it
    if (validate !== undefined && !onlyUtf8(parameters)) return violation(op, route, 'content_type', 'content_type: a JSON body must be UTF-8 (charset=utf-8, or no charset)');
    // the check reads the bytes as sent; an app that undoes a content coding (Express's
    // body-parser inflates gzip, deflate and br) would parse another document than the one checked
    const coding = headers['content-encoding'];
    if (validate !== undefined && coding !== undefined && coding.trim().toLowerCase() !== 'identity') return violation(op, route, 'content_type', `content_type: a JSON body is checked as sent, so it cannot have a Content-Encoding (${clip(coding, MAX_QUOTED)})`);
    return { operation: op, route, violation: undefined, body: validate };
  }

  /**
   * Why an app behind could read the path as another operation than `op`, which would pass this
   * one's rules and be served by that one's; undefined when none can. The readings: the path
   * as sent, before its escapes are decoded; `;params` dropped or cut at a decoded `?` or `#`
   * (otherReadings); an encoded slash or a backslash read as `/` (slashReading); and the
   * path's case ignored (Express's default routing, ASP.NET's): `/orders/MINE` matches
   * `/orders/{id}` here and is `/orders/mine` to them; and a last `.ext` taken for a format
   * (formatReadings).
   */
  private misreading(method: string, path: string, canonical: string, op: CompiledOperation): string | undefined {
    const quoted = clip(path, MAX_QUOTED);
    if (path.indexOf(';') !== -1 || path.indexOf('%') !== -1 || path.indexOf('\\') !== -1) {
      // the path as sent, escapes kept: a router that matches it before decoding (Express, which
      // decodes the parameters after) has `/orders/%6Dine` as `/orders/{id}`, `/orders/mine` here
      if (canonical !== path) {
        const raw = this.match(method, path)?.value;
        if (raw !== undefined && raw !== op) return `path: ${quoted} reads as ${raw.template} to an app that routes on the path as sent, before decoding its escapes`;
      }
      for (const other of otherReadings(canonical)) {
        const read = this.match(method, other)?.value;
        if (read !== undefined && read !== op) return `path: ${quoted} reads as ${read.template} to an app that drops ;params or decodes ? and #`;
      }
      const slashed = slashReading(canonical);
      const read = slashed === undefined ? undefined : this.match(method, slashed)?.value;
      if (read !== undefined && read !== op) return `path: ${quoted} reads as ${read.template} to an app that decodes %2F or reads \\ as /`;
    }
    // a format suffix, unless the template spells the extension itself (`/openapi.json`,
    // `/files/{name}.json`: that path to every app); `{id}.{format}` spells none, and a Rails
    // app with a literal route for the rest serves that one
    const formatless = formatReadings(canonical);
    if (formatless.length > 0 && !spellsExtension(op.template)) {
      // `/users/{id}.{format}` beside `/users/{id}`: one action to such an app, not another
      const stem = op.template.replace(/\.\{[^}/]*\}$/, '');
      for (const reading of formatless) {
        const read = this.match(method, reading)?.value;
        if (read !== undefined && read !== op && read.template !== stem) return `path: ${quoted} reads as ${read.template} to an app that takes a last .ext for a format (Rails, Spring's suffix patterns)`;
      }
    }
    // only a path or a template with an upper-case letter can read otherwise without case; the
    // path's letters as the app reads them (`%4d%49%4e%45` is MINE, with no capital as sent)
    if (this.index.templatesHaveUpperCase || /[A-Z]/.test(canonical)) {
      const read = this.match(method, canonical, true)?.value;
      // templates that differ in case alone are one route to such an app: not another operation
      if (read !== undefined && read.template.toLowerCase() !== op.template.toLowerCase()) return `path: ${quoted} reads as ${read.template} to an app that routes paths without regard to case`;
    }
    return undefined;
  }
}

/** Whether a template's last segment ends in a literal `.ext` (text after its last dot, no parameter). */
function spellsExtension(template: string): boolean {
  const segment = template.slice(template.lastIndexOf('/') + 1);
  const dot = segment.lastIndexOf('.');
  return dot !== -1 && !segment.slice(dot).includes('{');
}

function violation(operation: CompiledOperation, route: string, kind: Violation['kind'], message: string): SchemaCheck {
  return { operation, route, violation: { kind, message }, body: undefined };
}

/** `a, b,c` → ['a', 'b', 'c'] (optional whitespace around the commas, as in a header list). */
function commaItems(value: string): string[] {
  return value.split(',').map((item) => item.trim());
}

/** Each named value (style simple: a string, or a header Node already joined) as its comma-separated items. */
function splitArrays(values: Record<string, unknown>, names: ReadonlySet<string>): Record<string, unknown> {
  if (names.size === 0) return values;
  for (const name of names) {
    const value = values[name];
    if (typeof value === 'string') values[name] = commaItems(value);
  }
  return values;
}

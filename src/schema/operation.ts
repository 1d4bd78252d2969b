// One OpenAPI operation compiled for the request path: Ajv validators for its path, query
// and header parameters (values arrive as strings, so they are coerced to the schema's types)
// and, per media type, for its request body. Compiled once when the spec loads, never per request.

import type { ValidateFunction } from 'ajv';
import { describeError } from '../errors.js';
import { pointerOf, SpecError } from './spec-error.js';
import type { SchemaCompilers } from './compilers.js';
import { numericKindOf, type NumericKind } from './number-syntax.js';
import { typesOf } from './schema-shape.js';
import { requestView } from './request-view.js';

export interface MediaRule {
  /** `application/json`, `application/*` or `*\/*`, lower-case. */
  readonly range: string;
  /** JSON (isJsonType: application/json or +json, not gRPC's) with a schema: the body is buffered and validated. */
  readonly validate: ValidateFunction | undefined;
  /** A range with `*` (`*\/*`, `application/*`) and a schema: a JSON body it admits is validated by it. */
  readonly validateJson: ValidateFunction | undefined;
}

/**
 * What apps read as JSON: application/json, text/json or any `+json` type, lower-case, no
 * parameters; and the old aliases Rails registers for JSON, text/x-json and
 * application/jsonrequest (with application/x-json, which jQuery-era clients send). text/json
 * is JSON to the apps that list it: ASP.NET Core's JSON input formatter reads it, and
 * Swashbuckle writes every request body's schema under application/json, text/json and
 * application/*+json; left out, a caller sending text/json (or text/x-json to a Rails app)
 * had its body reach such an app unchecked. Flask, Spring and ASP.NET read every
 * `application/*+json` as JSON, gRPC's application/grpc+json included.
 */
export function readsAsJson(type: string): boolean {
  return type === 'application/json' || type === 'text/json' || type.endsWith('+json') || JSON_ALIASES.has(type);
}

const JSON_ALIASES = new Set(['text/x-json', 'application/jsonrequest', 'application/x-json']);

/** A media entry whose schema is a JSON body's: read as JSON, and not gRPC's framing. */
export function isJsonType(type: string): boolean {
  return readsAsJson(type) && !isGrpcType(type);
}

/**
 * gRPC's own types, exactly: application/grpc and application/grpc+<codec> (proto, json, ...).
 * Their body is length-prefixed messages (a flag byte 0 or 1, a 4-byte length, the message),
 * never one JSON document, so it is not validated as one where the spec lists that type for
 * the operation: the API says the operation speaks gRPC there. Anywhere else (a `*\/*`,
 * `application/*` or `application/*+json` entry, or the JSON schema beside an entry without
 * one) application/grpc+json is the JSON type it claims to be, since an app that reads
 * `application/*+json` as JSON parses it: it is validated, and a real gRPC-JSON call there
 * is refused as not JSON (list application/grpc+json to let it through). A body is not passed
 * for looking framed (a first byte of 0 or 1): Python's json.loads, so Flask's and Django's
 * JSON, reads a body that starts with a zero byte as UTF-16 or UTF-32 JSON. A type that only
 * starts so (`application/grpcx+json`, `application/grpc+x+json`) is not gRPC at all.
 */
export function isGrpcType(type: string): boolean {
  return type === 'application/grpc' || GRPC_WITH_CODEC.test(type);
}

/** application/grpc+ a codec name: one token, no `+` in it. */
const GRPC_WITH_CODEC = /^application\/grpc\+[!#$%&'*.^_`|~0-9a-z-]+$/;

export interface BodyRule {
  readonly required: boolean;
  readonly media: readonly MediaRule[];
}

export interface QueryParam {
  readonly name: string;
  /** The schema is an array: every repeated value is kept (a scalar given twice is refused). */
  readonly array: boolean;
  /** An array with `explode: false`: one value, its items separated by commas (`ids=1,2,3`). */
  readonly commaSeparated: boolean;
}

export interface CompiledOperation {
  readonly method: string;
  /** The path template as written in the spec: the metric route label. */
  readonly template: string;
  readonly pathParams: ValidateFunction | undefined;
  /** Path parameters whose schema is an array: style simple, items separated by commas. */
  readonly arrayPathParams: ReadonlySet<string>;
  readonly query: ValidateFunction | undefined;
  readonly queryParams: readonly QueryParam[];
  readonly headers: ValidateFunction | undefined;
  /** Lower-case names of the declared header parameters. */
  readonly headerNames: readonly string[];
  /** Lower-case names of the header parameters whose schema is an array (comma-separated items). */
  readonly arrayHeaderNames: ReadonlySet<string>;
  /** Numeric parameters (or arrays of numbers) by location, by name (headers lower-case): their text must be decimal (number-syntax.ts). */
  readonly numeric: { readonly path: ReadonlyMap<string, NumericKind>; readonly query: ReadonlyMap<string, NumericKind>; readonly header: ReadonlyMap<string, NumericKind> };
  readonly body: BodyRule | undefined;
}

interface Parameter {
  readonly name?: unknown;
  readonly in?: unknown;
  readonly required?: unknown;
  readonly schema?: unknown;
  readonly style?: unknown;
  readonly explode?: unknown;
}

/**
 * Parameters checked: those with a schema in the default styles (form for query, simple for
 * path and header). Others (deepObject, pipe- or space-delimited, matrix, label, `content`)
 * are not interpreted, so they are left alone rather than misjudged. So are objects, in any
 * style: form spreads an exploded one over keys of its own (`?color=blue&size=M` for `filter`)
 * and the others write it as `key,value` pairs; checked as one string, every valid call was
 * refused (`query/filter: is required`, `header/x-tags: must be object`).
 */
function interpreted(p: Parameter): boolean {
  return p.schema !== undefined && (p.style === undefined || p.style === 'form' || p.style === 'simple') && !isObjectSchema(p.schema);
}

/** `type: object`, or (OpenAPI 3.1) a list of types that includes object, here or in a subschema applied to the value (allOf...). */
function isObjectSchema(schema: unknown): boolean {
  return typesOf(schema).has('object');
}

/** Header parameters OpenAPI says to ignore: they are described elsewhere (content, security). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);

export function compileOperation(
  compilers: SchemaCompilers,
  file: string,
  template: string,
  method: string,
  operation: Record<string, unknown>,
  shared: readonly unknown[],
): CompiledOperation {
  const at = (...rest: Array<string | number>) => pointerOf('paths', template, method.toLowerCase(), ...rest);
  // operation-level parameters override path-level ones of the same name and location
  const byKey = new Map<string, Parameter>();
  for (const p of [...shared, ...asArray(operation.parameters)] as Parameter[]) byKey.set(`${String(p.in)}:${String(p.name)}`, p);
  const params = [...byKey.values()];
  const group = (location: string, lower = false) => {
    const properties: Record<string, unknown> = {};
    const required: string[] = [];
    for (const p of params) {
      if (p.in !== location || typeof p.name !== 'string' || !interpreted(p)) continue;
      const name = lower ? p.name.toLowerCase() : p.name;
      if (location === 'header' && IGNORED_HEADERS.has(name)) continue;
      properties[name] = requestView(p.schema ?? {}, compilers.requestViews);
      if (p.required === true || location === 'path') required.push(name);
    }
    return { properties, required };
  };
  const compileGroup = (location: 'path' | 'query' | 'header') => {
    const g = group(location, location === 'header');
    if (Object.keys(g.properties).length === 0) return undefined;
    return compileAt(file, at('parameters'), () => compilers.params.compile({ type: 'object', properties: g.properties, required: g.required }));
  };
  // only the checked ones: a parameter in another style is left alone, repeated or not
  const queryParams = params
    .filter((p) => p.in === 'query' && typeof p.name === 'string' && interpreted(p))
    .map((p) => ({ name: p.name as string, array: isArraySchema(p.schema), commaSeparated: isArraySchema(p.schema) && p.explode === false }));
  // style simple (path, header): an array's items are one value separated by commas, exploded or not
  const arrayNames = (location: string, lower: boolean) =>
    new Set(params.filter((p) => p.in === location && typeof p.name === 'string' && interpreted(p) && isArraySchema(p.schema)).map((p) => (lower ? (p.name as string).toLowerCase() : (p.name as string))));
  const numericNames = (location: string, lower: boolean) => {
    const kinds = new Map<string, NumericKind>();
    for (const p of params) {
      if (p.in !== location || typeof p.name !== 'string' || !interpreted(p)) continue;
      const kind = numericKindOf(p.schema);
      if (kind !== undefined) kinds.set(lower ? p.name.toLowerCase() : p.name, kind);
    }
    return kinds;
  };
  return {
    method,
    template,
    pathParams: compileGroup('path'),
    arrayPathParams: arrayNames('path', false),
    query: compileGroup('query'),
    queryParams,
    headers: compileGroup('header'),
    headerNames: Object.keys(group('header', true).properties),
    arrayHeaderNames: arrayNames('header', true),
    numeric: { path: numericNames('path', false), query: numericNames('query', false), header: numericNames('header', true) },
    body: compileBody(compilers, file, operation.requestBody, at('requestBody')),
  };
}

function compileBody(compilers: SchemaCompilers, file: string, requestBody: unknown, at: string): BodyRule | undefined {
  if (requestBody === null || typeof requestBody !== 'object') return undefined;
  const body = requestBody as { required?: unknown; content?: Record<string, { schema?: unknown } | undefined> };
  const media: MediaRule[] = [];
  for (const [range, entry] of Object.entries(body.content ?? {})) {
    const lower = range.toLowerCase().split(';')[0]?.trim() ?? '';
    // an application/grpc+json entry is gRPC framing (length-prefixed messages), not one JSON document
    const json = isJsonType(lower);
    // a schema under a range (`*/*`, `application/*`) holds the JSON bodies it admits: left
    // unused, a spec that writes its schema there would check nothing and say nothing
    const ranged = lower.endsWith('/*');
    const validate =
      (json || ranged) && entry?.schema !== undefined ? compileAt(file, `${at}${pointerOf('content', range, 'schema')}`, () => compilers.body.compile(requestView(entry.schema, compilers.requestViews) as object)) : undefined;
    media.push({ range: lower, validate: json ? validate : undefined, validateJson: ranged ? validate : undefined });
  }
  return { required: body.required === true, media };
}

function compileAt(file: string, pointer: string, compile: () => ValidateFunction): ValidateFunction {
  try {
    return compile();
  } catch (err) {
    throw new SpecError(file, pointer, `the schema does not compile: ${describeError(err)}`);
  }
}

/** `type: array`, or (OpenAPI 3.1) a list of types that includes array, here or in a subschema applied to the value (allOf...). */
function isArraySchema(schema: unknown): boolean {
  return typesOf(schema).has('array');
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

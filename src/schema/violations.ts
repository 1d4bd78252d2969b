// A request's first departure from the spec, in words a caller can act on:
// `body/qty: must be >= 1`, `path/id: must be integer`, `query/status: is required`.

import type { ErrorObject } from 'ajv';
import type { ErrorCode } from '../errors.js';
import { clip } from '../clip.js';

/** The `kind` label of meshcar_schema_violations_total; a fixed set. */
export type ViolationKind = 'undocumented_operation' | 'path' | 'query' | 'header' | 'content_type' | 'body';

export interface Violation {
  readonly kind: ViolationKind;
  /** Location and rule, e.g. `body/qty: must be >= 1`. */
  readonly message: string;
}

/** The error an enforcing sidecar answers a violation with (a body over maxBodySize: body_too_large). */
export const ERROR_OF: Readonly<Record<ViolationKind, ErrorCode>> = {
  undocumented_operation: 'undocumented_operation',
  path: 'schema_violation',
  query: 'schema_violation',
  header: 'schema_violation',
  content_type: 'unsupported_media_type',
  body: 'schema_violation',
};

/** The refusal when the bodies held for checking already fill openapi.maxBuffered, or the caller's share of it (body-budget.ts). */
export const OVER_BUDGET = "the request bodies held for the OpenAPI check fill openapi.maxBuffered, or the caller's share of it (all but an eighth); retry later";

/** A JSON body over the limit. */
export function tooLarge(maxBodySize: number): Violation {
  return { kind: 'body', message: `body: is larger than the ${maxBodySize}-byte limit (openapi.maxBodySize)` };
}

/** The first Ajv error as `location/field: rule`; `location` is body, path, query or header. */
export function describeAjvError(location: 'body' | 'path' | 'query' | 'header', error: ErrorObject | undefined): string {
  if (error === undefined) return `${location}: is invalid`;
  let at = `${location}${error.instancePath}`;
  let rule = error.message ?? 'is invalid';
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    at += `/${params.missingProperty}`;
    rule = 'is required';
  } else if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    at += `/${params.additionalProperty}`;
    rule = 'is not allowed';
  } else if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    rule = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${clip(at, MAX_QUOTED)}: ${clip(rule, MAX_QUOTED)}`;
}

/** Longest location or rule quoted: both can carry the caller's own text (property names, values); a 500 KB property name is not echoed into the answer and the log. */
export const MAX_QUOTED = 200;

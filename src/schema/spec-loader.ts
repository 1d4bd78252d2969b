// Reads an OpenAPI 3.0/3.1 spec (YAML or JSON) with the OpenAPI parser: parsed, validated
// against the OpenAPI schema and every $ref resolved, so the compiler sees one plain tree.
// Remote $refs are not followed: a sidecar must not fetch anything to start or reload.

import SwaggerParser from '@apidevtools/swagger-parser';
import { describeError } from '../errors.js';
import { SpecError } from './spec-error.js';

/** The parts of an OpenAPI document the sidecar reads; everything else is kept as is. */
export interface OpenApiDocument {
  readonly openapi?: string;
  readonly swagger?: string;
  readonly paths?: Record<string, Record<string, unknown> | undefined>;
  readonly servers?: unknown;
  readonly [key: string]: unknown;
}

interface ValidationDetail {
  readonly instancePath?: string;
  readonly message?: string;
}

/** The dereferenced document, or a SpecError naming the file and the JSON pointer at fault. */
export async function loadSpecDocument(file: string): Promise<OpenApiDocument> {
  let api: unknown;
  try {
    api = await SwaggerParser.validate(file, { resolve: { http: false }, dereference: { circular: false } } as SwaggerParser.Options);
  } catch (err) {
    throw asSpecError(file, err);
  }
  const doc = api as OpenApiDocument;
  if (typeof doc.openapi !== 'string' || !/^3\.[01]\./.test(doc.openapi)) {
    throw new SpecError(file, doc.swagger !== undefined ? '/swagger' : '/openapi', `OpenAPI ${String(doc.openapi ?? doc.swagger)} is not supported: give an OpenAPI 3.0 or 3.1 document`);
  }
  return doc;
}

function asSpecError(file: string, err: unknown): SpecError {
  const e = err as { code?: string; parentPath?: string; details?: ValidationDetail[]; message?: string };
  // a $ref to nowhere: the parser names the node that holds it
  if (typeof e.parentPath === 'string') return new SpecError(file, e.parentPath.replace(/^#/, ''), describeError(err));
  // the spec breaks the OpenAPI schema: the deepest place named is the most useful one
  const details = Array.isArray(e.details) ? e.details : [];
  const first = details.reduce<ValidationDetail | undefined>((deepest, d) => ((d.instancePath?.length ?? -1) > (deepest?.instancePath?.length ?? -1) ? d : deepest), undefined);
  if (first && typeof first.instancePath === 'string') return new SpecError(file, first.instancePath, `does not follow the OpenAPI schema: ${first.message ?? 'invalid'}`);
  if (e.code === 'ENOENT' || /ENOENT|no such file/i.test(String(e.message))) return new SpecError(file, '', 'the spec file does not exist (relative paths are resolved against the working directory)');
  if (/circular/i.test(String(e.message))) return new SpecError(file, '', `${describeError(err)}: circular $refs are not supported`);
  return new SpecError(file, '', describeError(err).split('\n')[0] ?? 'cannot be read');
}

// Reads an OpenAPI 3.0/3.1 spec (YAML or JSON) with the OpenAPI parser: parsed, validated
// against the OpenAPI schema and every $ref resolved, so the compiler sees one plain tree.
// Remote $refs are not followed: a sidecar must not fetch anything to start or reload. Every
// file (the spec and the files its $refs name) is read and parsed by spec-file.ts, within its
// size and YAML alias limits; the OpenAPI parser gets the spec as a parsed object, and what
// its $refs expand to is measured before the parser validates (walks) the resolved tree.
// This runs in a worker thread (spec-loader.ts): the parser's validation is synchronous.

import SwaggerParser from '@apidevtools/swagger-parser';
import { describeError } from '../errors.js';
import { SpecError } from './spec-error.js';
import { suggestKey } from '../config/key-suggestion.js';
import { fileErrorWords } from '../user-paths.js';
import { checkDereferenced, parseSpecText, readSpecBytes, SpecFileError, specFileReader } from './spec-file.js';

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

/**
 * The dereferenced document, or a SpecError naming the file and the JSON pointer at fault.
 * `refsRead`, when given, gets the files the spec's $refs named that were read.
 */
export async function readSpecDocument(file: string, refsRead?: (files: readonly string[]) => void): Promise<OpenApiDocument> {
  let api: unknown;
  let parsed: unknown;
  const reader = specFileReader();
  try {
    parsed = parseSpecText(file, await readSpecBytes(file));
    // not a map: the OpenAPI parser would take a string for a path to read
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return notAnOpenApiDocument(file);
    // the parser says only "is not a valid Openapi API definition" of a document without them
    refuseMissingTopKeys(file, parsed as Record<string, unknown>);
    // `file` stays the base that relative $refs resolve against
    const options = { ...reader.plugins, dereference: { circular: false } } as unknown as SwaggerParser.Options;
    // the $refs resolved and what they expand to measured before the validation walks the tree
    const dereferenced = await new SwaggerParser().dereference(file, parsed as Parameters<typeof SwaggerParser.validate>[0] & object, options);
    checkDereferenced(dereferenced);
    refuseSelfReferences(file, dereferenced);
    api = await SwaggerParser.validate(file, dereferenced, options);
    refsRead?.(reader.filesRead().filter((path) => path !== file));
  } catch (err) {
    // a file a $ref names, refused by the reader: its own words, naming that file
    throw asSpecError(file, reader.refusal() ?? err, parsed);
  }
  const doc = api as OpenApiDocument;
  if (typeof doc.openapi !== 'string' || !/^3\.[01]\./.test(doc.openapi)) {
    throw new SpecError(file, doc.swagger !== undefined ? '/swagger' : '/openapi', `OpenAPI ${String(doc.openapi ?? doc.swagger)} is not supported: give an OpenAPI 3.0 or 3.1 document`);
  }
  return doc;
}

/** Keys whose values are data, not schemas: a `$ref` there is a value, not a reference (and `x-` extensions, below; a link's requestBody and parameters are values too). */
const DATA_KEYS = new Set(['example', 'examples', 'default', 'const', 'enum', 'links']);
/** References the parser leaves in place: `$ref: ''` (the schema's own root to the validator) and 2020-12's dynamic ones. */
const LEFT_REFERENCES = ['$ref', '$dynamicRef', '$recursiveRef'];
/** Keys whose maps are keyed by names, so a name there is never a keyword (a property called `example`). */
const NAMING_KEYS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'schemas', 'paths', 'responses', 'content', 'headers', 'parameters', 'requestBodies', 'dependentSchemas']);

/**
 * A reference the dereferencing left in the tree is a schema naming itself: the parser skips an
 * empty `$ref` and does not know `$dynamicRef`, so `{$ref: ''}` or a `$dynamicAnchor` loop got
 * past the rule against recursive schemas, and Ajv then recursed without end on every body
 * (each one refused as "could not be validated", ~4.5 ms of CPU each; the config review).
 * Refused as any circular $ref is, naming where. Each object is looked at once (the tree shares
 * the objects a $ref expanded to).
 */
function refuseSelfReferences(file: string, document: unknown): void {
  const seen = new WeakSet<object>();
  // `named`: the keys of this map are names (of properties, schemas), not keywords
  const walk = (node: unknown, pointer: string, named: boolean): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${pointer}/${i}`, false));
      return;
    }
    const fields = node as Record<string, unknown>;
    for (const key of named ? [] : LEFT_REFERENCES) {
      // `#Foo`: a fragment that is no JSON pointer, not a schema naming itself (a review)
      const left = fields[key];
      if (key === '$ref' && typeof left === 'string' && /^#[^/]/.test(left)) {
        throw new SpecError(file, `${pointer}/${escapePointer(key)}`.replace(/\/\$ref$/, ''), `its $ref ${JSON.stringify(left)} has a fragment that is no JSON pointer (${left}): a pointer starts with #/, as in #/${left.slice(1)}`);
      }
      if (typeof fields[key] === 'string') throw circularRef(file, `Circular $ref pointer found at ${file}#${pointer}/${escapePointer(key)} (${key}: ${JSON.stringify(fields[key]).slice(0, 80)})`);
    }
    for (const [key, value] of Object.entries(fields)) {
      if (!named && (DATA_KEYS.has(key) || key.startsWith('x-'))) continue;
      walk(value, `${pointer}/${escapePointer(key)}`, !named && NAMING_KEYS.has(key));
    }
  };
  walk(document, '', false);
}

/** The missing-pointer error as the parser gives it, said where the $ref is and what it names. */
function missingPointer(file: string, e: { parentPath?: string; source?: string; targetRef?: string; targetToken?: string; targetFound?: string; message?: string }): SpecError {
  const parentPath = e.parentPath ?? '';
  const hash = parentPath.indexOf('#');
  // `#/...` alone: in the file the $ref was read from, where its target was looked up too
  const holder = hash > 0 ? parentPath.slice(0, hash) : (e.source ?? file);
  const pointer = hash >= 0 ? parentPath.slice(hash + 1) : '';
  const elsewhere = e.source !== undefined && e.source !== holder;
  const under = e.targetFound === undefined || e.targetFound === '#' || e.targetFound === '' ? 'at its top level' : `under ${e.targetFound.replace(/^#/, '')}`;
  const detail =
    e.targetToken === undefined
      ? describeError(e)
      : `Missing $ref pointer ${JSON.stringify(e.targetRef ?? '?')}${elsewhere ? ` in ${e.source}` : ''}: ${elsewhere ? 'that file' : 'this file'} has no ${JSON.stringify(e.targetToken)} ${under}`;
  return new SpecError(holder, pointer, holder === file ? detail : `${detail} (a file ${file} names)`);
}

/** `text` percent-decoded, or as it is when it does not decode. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Where in the parsed spec a $ref ends in `#fragment` (the first found), with the $ref as written. */
function refWithFragment(parsed: unknown, fragment: string): { pointer: string; ref: string } | undefined {
  const seen = new WeakSet<object>();
  const walk = (node: unknown, pointer: string): { pointer: string; ref: string } | undefined => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return undefined;
    seen.add(node);
    const fields = node as Record<string, unknown>;
    if (typeof fields.$ref === 'string' && (fields.$ref.endsWith(`#${fragment}`) || safeDecode(fields.$ref).endsWith(`#${fragment}`))) return { pointer, ref: fields.$ref };
    for (const [key, value] of Object.entries(fields)) {
      const found = walk(value, `${pointer}/${escapePointer(key)}`);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(parsed, '');
}

/** The parser's words for a document without `openapi` or `paths` name neither: said here, with a key that looks meant. */
function refuseMissingTopKeys(file: string, doc: Record<string, unknown>): void {
  const keys = Object.keys(doc);
  const meant = (wanted: string) => {
    const near = keys.find((key) => key !== wanted && suggestKey(key, [wanted]) === wanted);
    return near === undefined ? '' : ` (did you mean ${wanted} for ${JSON.stringify(near)}?)`;
  };
  if (doc.openapi === undefined && doc.swagger === undefined) throw new SpecError(file, '', `has no "openapi" key naming its OpenAPI version (3.0.x or 3.1.x)${meant('openapi')}`);
  // OpenAPI 3.1 allows webhooks alone; meshcar checks calls by their paths
  if (doc.paths === undefined && doc.webhooks === undefined) throw new SpecError(file, '', `has no "paths" map, which holds the operations to check${meant('paths')}`);
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function notAnOpenApiDocument(file: string): never {
  throw new SpecError(file, '', 'is not an OpenAPI document (its top level is not a map)');
}

function asSpecError(file: string, err: unknown, parsed?: unknown): SpecError {
  if (err instanceof SpecError) return err;
  // the spec file itself too large, or its YAML refused (aliases, syntax): says so about the whole file
  if (err instanceof SpecFileError) return new SpecError(file, '', err.message);
  const e = err as { code?: string; parentPath?: string; source?: string; targetRef?: string; targetToken?: string; targetFound?: string; details?: ValidationDetail[]; message?: string };
  // a $ref to nowhere: the parser names the node that holds it (`FILE#/pointer`, or `#/pointer`
  // in the file the $ref was read from) and the file the pointer was looked up in (`source`)
  if (typeof e.parentPath === 'string') return missingPointer(file, e);
  // a $ref whose fragment is no JSON pointer (`schemas.yaml#NewOrder`): the parser does not say where
  if (e.code === 'EUNMATCHEDRESOLVER') {
    const fragment = /Invalid \$ref pointer "([^"]*)"/.exec(String(e.message))?.[1];
    const at = fragment === undefined ? undefined : refWithFragment(parsed, fragment);
    const where = at === undefined ? `a $ref in ${file} or a file it names` : `its $ref ${JSON.stringify(at.ref)}`;
    return new SpecError(file, at?.pointer ?? '', `${where} has a fragment that is no JSON pointer (#${fragment ?? '?'}): a pointer starts with #/, as in #/${fragment ?? 'Name'}`);
  }
  // the spec breaks the OpenAPI schema: the deepest place named is the most useful one
  const details = Array.isArray(e.details) ? e.details : [];
  const first = details.reduce<ValidationDetail | undefined>((deepest, d) => ((d.instancePath?.length ?? -1) > (deepest?.instancePath?.length ?? -1) ? d : deepest), undefined);
  if (first && typeof first.instancePath === 'string') return new SpecError(file, first.instancePath, `does not follow the OpenAPI schema: ${first.message ?? 'invalid'}`);
  if (e.code === 'ENOENT' || /ENOENT|no such file/i.test(String(e.message))) return new SpecError(file, '', 'the spec file does not exist (relative paths are resolved against the working directory)');
  // a file-system error in words (ELOOP, EACCES, ...), not Node's text
  const words = fileErrorWords(err);
  if (words !== undefined) return new SpecError(file, '', `cannot be read: ${words}`);
  if (/circular/i.test(String(e.message))) return circularRef(file, String(e.message));
  return new SpecError(file, '', describeError(err).split('\n')[0] ?? 'cannot be read');
}

/**
 * A recursive schema (a $ref inside the schema it names: a tree's `Node` whose `kids` are
 * Nodes) is not supported: every schema is expanded into one plain tree for the compiler. Named
 * where the parser found it (`Circular $ref pointer found at <file>#<pointer>`), with the way around.
 */
function circularRef(file: string, message: string): SpecError {
  const at = /found at (.+?)#(\/\S*)/.exec(message);
  const detail = 'a circular $ref (a recursive schema) is not supported: write that part without the cycle (a fixed number of levels) or as {} (any value, not checked)';
  return at === null ? new SpecError(file, '', `${message.split('\n')[0] ?? ''}: ${detail}`) : new SpecError(at[1] as string, at[2] as string, detail);
}

// Reads one OpenAPI spec file (the spec itself, or a file one of its $refs names) without
// letting the file cost unbounded time or memory: the file's size is capped before it is read,
// YAML is parsed with the `yaml` package and its alias limit (the OpenAPI parser's own YAML
// reader expands aliases without a limit: a 13-line "billion laughs" spec froze `check` and a
// running sidecar's reload), and what the aliases expand to is measured before anything walks
// or copies the tree. Each refusal names the file.

import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScalar, LineCounter, parseDocument, visit, type Scalar } from 'yaml';

/** A spec file larger than this is refused before it is read (JSON and YAML alike). */
export const MAX_SPEC_BYTES = 5 * 1024 * 1024;
/** YAML aliases allowed, as the `yaml` package counts them (its default); a bomb needs far more. */
const MAX_ALIAS_COUNT = 100;
/**
 * The tree as the OpenAPI parser walks and copies it (an aliased node once per alias), in units
 * of one node plus its scalar's characters. A file without aliases measures at most about twice
 * its size, so four times the size cap refuses only what aliases blew up.
 */
const MAX_EXPANDED_UNITS = 4 * MAX_SPEC_BYTES;

/** Why a spec file cannot be read; the caller says which file (it knows the user's spelling). */
export class SpecFileError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SpecFileError';
  }
}

/** The file's bytes, or a SpecFileError when it is larger than MAX_SPEC_BYTES (checked before reading, and while reading). */
export async function readSpecBytes(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > MAX_SPEC_BYTES) throw tooLarge(`is ${size} bytes`);
    // a file that grows while it is read (or a pipe, size 0) is still stopped at the cap
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await handle.read(Buffer.alloc(1024 * 1024), 0, 1024 * 1024, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      total += bytesRead;
      if (total > MAX_SPEC_BYTES) throw tooLarge(`holds more than ${MAX_SPEC_BYTES} bytes`);
      chunks.push(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

function tooLarge(what: string): SpecFileError {
  return new SpecFileError(`the spec file ${what}; at most ${MAX_SPEC_BYTES} (${MAX_SPEC_BYTES / 1024 / 1024} MiB) are read`, 'spec_too_large');
}

/** Parses a spec file's text: JSON for `.json`, YAML (which includes JSON) for anything else. */
export function parseSpecText(file: string, data: Buffer | string): unknown {
  const text = (typeof data === 'string' ? data : data.toString('utf8')).replace(/^\uFEFF/, '');
  let value: unknown;
  if (extname(file).toLowerCase() === '.json') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new SpecFileError(`not valid JSON: ${(err as Error).message}`);
    }
  } else {
    value = parseYamlSpec(text);
  }
  if (expandedUnits(value, MAX_EXPANDED_UNITS) > MAX_EXPANDED_UNITS) throw aliasBomb();
  return value;
}

/**
 * YAML as the OpenAPI parser read it before (merge keys `<<` work, a repeated key is an error),
 * within the alias limit. The `yaml` package's own repeated-key check compares every key with
 * every other (a map of 40000 keys took 40 s), so keys are checked here, once each.
 */
function parseYamlSpec(text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, merge: true, uniqueKeys: false, prettyErrors: false });
  const where = (offset: number | undefined) => {
    const { line, col } = lines.linePos(offset ?? 0);
    return `line ${line}, column ${col}`;
  };
  const [error] = doc.errors;
  if (error) throw new SpecFileError(`YAML syntax at ${where(error.pos[0])}: ${error.message.split('\n')[0] ?? ''}`);
  let repeated: Scalar | undefined;
  visit(doc, {
    Map(_, map) {
      const keys = new Set<unknown>();
      for (const { key } of map.items) {
        if (!isScalar(key)) continue;
        if (keys.has(key.value)) {
          repeated = key;
          return visit.BREAK;
        }
        keys.add(key.value);
      }
      return undefined;
    },
  });
  if (repeated) throw new SpecFileError(`YAML: the key ${JSON.stringify(repeated.value)} at ${where(repeated.range?.[0])} is repeated in its map`);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (/alias count/i.test((err as Error).message)) throw aliasBomb();
    throw new SpecFileError(`YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
}

function aliasBomb(): SpecFileError {
  return new SpecFileError('its YAML aliases (*name) expand to far more than the file holds (a resource exhaustion attack?); write the repeated parts out or use $ref', 'spec_aliases');
}

/** The tree's size with every shared node counted where it appears; stops counting past `budget`. */
function expandedUnits(root: unknown, budget: number): number {
  let units = 0;
  const stack: unknown[] = [root];
  while (stack.length > 0 && units <= budget) {
    const value = stack.pop();
    units += 1;
    if (typeof value === 'string') units += value.length;
    else if (Array.isArray(value)) for (const item of value) stack.push(item);
    else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        units += key.length;
        stack.push(item);
      }
    }
  }
  return units;
}

/** A $ref's file as the OpenAPI parser names it (an absolute path or a file: URL, percent-encoded) → a path. */
function pathOfRef(url: string): string {
  return fileURLToPath(new URL(url, 'file:///'));
}

/**
 * The OpenAPI parser's plugins for the files a spec's $refs name: read with the same size cap
 * and parsed with the same YAML limits as the spec itself (its own reader and js-yaml are
 * replaced; remote $refs stay off). The parser rewraps a plugin's error (a read failure loses
 * its message), so the refusal is also kept here, naming the referenced file, for the caller.
 */
export function specFileReader() {
  let refusal: SpecFileError | undefined;
  const refused = (path: string, err: unknown): never => {
    const code = (err as SpecFileError).code;
    refusal = new SpecFileError(`${path}: ${code === 'ENOENT' ? 'a $ref names this file, which does not exist' : (err as Error).message}`, code);
    throw refusal;
  };
  const plugins = {
    resolve: {
      http: false,
      file: {
        order: 100,
        canRead: (file: { url: string }) => !/^[a-z][a-z\d+.-]+:/i.test(file.url) || /^file:/i.test(file.url),
        read: async (file: { url: string }) => {
          const path = pathOfRef(file.url);
          return readSpecBytes(path).catch((err: unknown) => refused(path, err));
        },
      },
    },
    parse: {
      json: false,
      text: false,
      binary: false,
      yaml: {
        order: 100,
        allowEmpty: true,
        canParse: true,
        parse: (file: { url: string; data: Buffer | string }) => {
          const path = pathOfRef(file.url);
          try {
            return parseSpecText(path, file.data);
          } catch (err) {
            return refused(path, err);
          }
        },
      },
    },
  };
  return { plugins, refusal: () => refusal };
}

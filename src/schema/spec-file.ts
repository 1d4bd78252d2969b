// Reads one OpenAPI spec file (the spec itself, or a file one of its $refs names) without
// letting the file cost unbounded time or memory: the file's size is capped before it is read,
// YAML is parsed with js-yaml's limits on depth and merged keys (aliases stay shared references),
// and what the aliases expand to is measured before anything walks or copies the tree (the
// OpenAPI parser dereferences and copies them: a 13-line "billion laughs" spec froze `check`
// and a running sidecar's reload). Each refusal names the file.

import { BoundedReadError, readBoundedFile } from '../bounded-file.js';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsyaml from 'js-yaml';
import { nestsDeeperThan } from './json-body.js';
import { fileErrorWords } from '../user-paths.js';

/** A spec file larger than this is refused before it is read (JSON and YAML alike). */
export const MAX_SPEC_BYTES = 5 * 1024 * 1024;
/** Nesting deeper than this is refused (js-yaml's default; a spec is a few tens deep), JSON's too. */
const MAX_YAML_DEPTH = 100;
/** Keys copied by merges (`<<`) in one file, at most (js-yaml's default); chained merges cannot grow past it. */
const MAX_MERGE_KEYS = 10_000;
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

/** The file's bytes, or a SpecFileError when it is larger than MAX_SPEC_BYTES or not a regular file (see bounded-file.ts). */
export async function readSpecBytes(file: string): Promise<Buffer> {
  try {
    return await readBoundedFile(file, MAX_SPEC_BYTES);
  } catch (err) {
    if (!(err instanceof BoundedReadError)) throw err;
    throw err.code === 'too_large' ? tooLarge(err.message.replace(/; at most \d+ are read$/, '')) : new SpecFileError(`the spec file ${err.message}`, 'spec_not_a_file');
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
    // JSON.parse takes any depth, the OpenAPI parser's walk does not: 200,000 levels of [ was
    // refused only as "Maximum call stack size exceeded"; YAML has js-yaml's maxDepth
    if (nestsDeeperThan(Buffer.from(text), MAX_YAML_DEPTH)) throw new SpecFileError(`its JSON nests arrays and objects more than ${MAX_YAML_DEPTH} deep; a spec needs a few tens`);
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
 * A spec with its $refs resolved (shared objects, as the OpenAPI parser makes them), measured
 * like a file's aliases before anything walks it: ten $refs per level repeat a schema as
 * aliases do, and the parser's validation walks every place it appears (14 lines held the
 * event loop for good).
 */
export function checkDereferenced(document: unknown): void {
  if (expandedUnits(document, MAX_EXPANDED_UNITS) > MAX_EXPANDED_UNITS) {
    throw new SpecFileError('its $refs expand to far more than its files hold (a resource exhaustion attack?); a schema used in many places is fine, a tree of schemas each naming the one below many times is not', 'spec_refs');
  }
}

/**
 * YAML's core schema (what the `yaml` package and YAML 1.2 read: dates stay strings, no
 * !!binary or other tags) plus merge keys `<<`, which specs use to share responses.
 */
// js-yaml 4 exports its types as `types`, which @types/js-yaml 4.0 does not declare
const SPEC_SCHEMA = jsyaml.CORE_SCHEMA.extend({ implicit: [(jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge] });

/**
 * YAML as the OpenAPI parser read it before (merge keys `<<` work, a repeated key is an error),
 * with js-yaml: an alias is a shared reference (never copied while parsing), nesting is capped
 * (maxDepth) and so are the keys merges copy (maxTotalMergeKeys), so parsing is linear in the
 * file; what the aliases expand to when walked is measured after (expandedUnits). js-yaml reads
 * a spec of 3,000 operations (1.2 MB) in ~0.15 s; the `yaml` package took ~2.5 s, which a reload
 * spends with the event loop held.
 */
function parseYamlSpec(text: string): unknown {
  try {
    return jsyaml.load(text, { schema: SPEC_SCHEMA, maxDepth: MAX_YAML_DEPTH, maxTotalMergeKeys: MAX_MERGE_KEYS } as jsyaml.LoadOptions);
  } catch (err) {
    if (!(err instanceof jsyaml.YAMLException)) throw err;
    const mark = err.mark as { line?: number; column?: number; position?: number } | undefined;
    const where = mark?.line === undefined ? '' : ` at line ${mark.line + 1}, column ${(mark.column ?? 0) + 1}`;
    if (err.reason === 'duplicated mapping key' && mark?.position !== undefined) {
      // js-yaml points at the key but does not name it
      const key = /^[ \t]*("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^:\n]*?)[ \t]*:/.exec(text.slice(mark.position, mark.position + 1024))?.[1] ?? '?';
      throw new SpecFileError(`YAML: the key ${/^["']/.test(key) ? key : JSON.stringify(key)}${where} is repeated in its map`);
    }
    throw new SpecFileError(`YAML syntax${where}: ${err.reason}`);
  }
}

function aliasBomb(): SpecFileError {
  return new SpecFileError('its YAML aliases (*name) expand to far more than the file holds (a resource exhaustion attack?); write the repeated parts out or use $ref', 'spec_aliases');
}

/**
 * The tree's size with every shared node counted where it appears (as the OpenAPI parser walks
 * and copies it). Each distinct object is measured once and its size reused wherever it is
 * referenced again, so a bomb is sized in time linear in what the file holds, not in what it
 * expands to. Sizes are capped at `budget + 1` (no overflow to worry about).
 */
function expandedUnits(root: unknown, budget: number): number {
  const cap = budget + 1;
  /** Size of each object measured; IN_PROGRESS while its children are (an ancestor of the walk). */
  const sizes = new Map<object, number>();
  const sizeOf = (value: unknown): number => {
    if (typeof value === 'string') return 1 + value.length;
    if (value === null || typeof value !== 'object') return 1;
    return sizes.get(value) ?? 0; // measured before (children first, below)
  };
  // children before their parent, without recursion (a JSON spec may nest deeply)
  const stack: Array<{ node: object; expanded: boolean }> = [];
  if (root !== null && typeof root === 'object') stack.push({ node: root, expanded: false });
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (!top.expanded) {
      const known = sizes.get(top.node);
      if (known === IN_PROGRESS) return cap; // refers to one of its ancestors: an endless expansion
      if (known !== undefined) {
        stack.pop();
        continue;
      }
      sizes.set(top.node, IN_PROGRESS);
      top.expanded = true;
      for (const child of Array.isArray(top.node) ? top.node : Object.values(top.node)) {
        if (child === null || typeof child !== 'object') continue;
        const state = sizes.get(child);
        if (state === IN_PROGRESS) return cap; // `&a [*a]`: js-yaml makes the cycle, the OpenAPI parser would walk it for ever
        if (state === undefined) stack.push({ node: child, expanded: false });
      }
      continue;
    }
    stack.pop();
    let units = 1;
    if (Array.isArray(top.node)) for (const child of top.node) units = Math.min(cap, units + sizeOf(child));
    else for (const key in top.node) units = Math.min(cap, units + key.length + sizeOf((top.node as Record<string, unknown>)[key]));
    sizes.set(top.node, units);
  }
  return sizeOf(root);
}

/** An object's mark in expandedUnits while its children are being measured. */
const IN_PROGRESS = -1;

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
  /** Every file a $ref named that was read (a reload waits for them to stand, as for the spec). */
  const read = new Set<string>();
  const refused = (path: string, err: unknown): never => {
    const code = (err as SpecFileError).code;
    refusal = new SpecFileError(`${path}: ${code === 'ENOENT' ? 'a $ref names this file, which does not exist' : fileErrorWords(err) ?? (err as Error).message}`, code);
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
          read.add(path);
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
  return { plugins, refusal: () => refusal, filesRead: () => [...read] };
}

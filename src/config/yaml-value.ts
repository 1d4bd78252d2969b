// The checked view of a parsed config: one value of the syntax tree with its key path and
// line:column, and the typed readers (map, list, string, number...) that report a wrong value as
// an issue instead of throwing. Separate from yaml-source.ts, which reads and vets the file: this
// is what every config section reader walks, once the document is known to be safe to walk.

import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { AliasTargets } from './yaml-aliases.js';
import type { ConfigIssue } from './issues.js';
import { suggestKey } from './key-suggestion.js';
import { nonAsciiCharacters } from './odd-characters.js';
import { clipBare, clipQuotedValues } from './quoted-values.js';

/** What every value of one document shares: where to blame, where its aliases lead, and the list issues go to. */
export interface Context {
  readonly file: string;
  readonly aliases: AliasTargets;
  readonly lines: LineCounter;
  readonly issues: ConfigIssue[];
}

export type YamlKind = 'map' | 'list' | 'string' | 'number' | 'boolean' | 'nothing' | 'missing';

const KIND_WORDS: Record<YamlKind, string> = {
  map: 'a map',
  list: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'a boolean',
  nothing: 'nothing',
  missing: 'nothing',
};

/** Where a node starts in the text (0 when it has no range), the offset issues are blamed at. */
export function startOf(node: Node | null | undefined): number {
  return node?.range?.[0] ?? 0;
}

/** `a.b`, `a[0]`, and `a["x.y"]` for keys a dot would make ambiguous. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/**
 * One value in the tree, or the absence of one (kind 'missing'), with the place to blame.
 * Values of map entries are blamed at their key, where a reader's eye finds the path.
 */
export class YamlValue {
  readonly path: string;
  /** Aliases already followed; null is an entry with no value, undefined a key not given. */
  readonly node: Node | null | undefined;
  readonly #ctx: Context;
  readonly #at: number;

  constructor(ctx: Context, node: Node | null | undefined, path: string, at: number) {
    this.#ctx = ctx;
    this.node = isAlias(node) ? (ctx.aliases.get(node) ?? null) : node;
    this.path = path;
    this.#at = at;
  }

  get present(): boolean {
    return this.node !== undefined;
  }

  get kind(): YamlKind {
    const node = this.node;
    if (node === undefined) return 'missing';
    if (node === null) return 'nothing';
    if (isMap(node)) return 'map';
    if (isSeq(node)) return 'list';
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || value === undefined) return 'nothing';
      if (typeof value === 'number' || typeof value === 'bigint') return 'number';
      if (typeof value === 'boolean') return 'boolean';
    }
    return 'string';
  }

  /** The value as written, for messages: strings quoted, other scalars bare. */
  display(): string {
    const node = this.node;
    if (isScalar(node)) return typeof node.value === 'string' ? JSON.stringify(node.value) : clipBare(String(node.source ?? node.value));
    return KIND_WORDS[this.kind];
  }

  report(message: string): undefined {
    const { line, col } = this.#ctx.lines.linePos(this.#at);
    // the values and keys it quotes are the config's: cut, so the line stays a line
    this.#ctx.issues.push({ file: this.#ctx.file, line: Math.max(line, 1), column: col, path: clipBare(this.path), message: clipQuotedValues(message) });
    return undefined;
  }

  /** "expected a string, got a list" */
  expected(what: string): undefined {
    return this.report(`expected ${what}, got ${KIND_WORDS[this.kind]}${bracketedAddressHint(this.node)}`);
  }

  /** The map, after reporting each key not in `allowed` (omit `allowed` for free-form maps). */
  map(allowed?: readonly string[]): YamlMap | undefined {
    const node = this.node;
    if (!isMap(node)) {
      // `service:orders` (no space after the colon) is one plain string to YAML, not a key and value
      // only a plain scalar (quoted, it is a string on purpose) whose part before the colon is a
      // key this map takes (`app:http://x` yes, `http://x` or `C:\\x` no: a review)
      const glued = isScalar(node) && node.type === 'PLAIN' && typeof node.value === 'string' ? /^([A-Za-z_][\w.-]*):(\S)/.exec(node.value) : null;
      if (glued !== null && allowed !== undefined && !allowed.includes(glued[1] ?? '')) return this.expected('a map');
      if (glued !== null) return this.report(`expected a map, got the string ${JSON.stringify(clipBare(glued.input))}: a key and its value need a space after the colon (${glued[1] ?? ''}: ${glued.input.slice((glued[1] ?? '').length + 1)})`);
      return this.expected('a map');
    }
    const entries = new Map<string, YamlValue>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const at = keyNode ? startOf(keyNode) : this.#at;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        new YamlValue(this.#ctx, keyNode, this.path, at).report('keys must be plain names');
        continue;
      }
      const key = typeof keyNode.value === 'string' ? keyNode.value : String(keyNode.source ?? keyNode.value);
      const value = new YamlValue(this.#ctx, pair.value as Node | null, childPath(this.path, key), at);
      if (key === '<<' && keyNode.type === 'PLAIN') {
        value.report('merge keys (<<) are not supported: write the keys out, or use an anchor and alias for a whole value');
        continue;
      }
      if (allowed && !allowed.includes(key)) {
        value.report(`unknown key${suggestion(key, allowed)}${nonAsciiCharacters(key)}; allowed here: ${allowed.join(', ')}`);
        continue;
      }
      // YAML's keys 8443 and "8443" (or true and "true") differ, so the parser lets both be;
      // read as names they are one, and the later replaced the earlier without a word
      if (entries.has(key)) {
        value.report(`the name ${key} is given twice in this map (once quoted, once not: YAML reads two keys, the config one name); give it once`);
        continue;
      }
      entries.set(key, value);
    }
    return new YamlMap(this, entries);
  }

  /** The value under `key` if this is a map holding it; checks and reports nothing (for cross-field checks). */
  peek(key: string): YamlValue | undefined {
    const node = this.node;
    if (!isMap(node)) return undefined;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    return pair && new YamlValue(this.#ctx, pair.value as Node | null, childPath(this.path, key), startOf(pair.key as Node));
  }

  /** peek(), the key matched in any case (upstream names are one name in any case): the path as the file writes it. */
  peekAnyCase(key: string): YamlValue | undefined {
    const node = this.node;
    if (!isMap(node)) return undefined;
    const lower = key.toLowerCase();
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value).toLowerCase() === lower);
    return pair && new YamlValue(this.#ctx, pair.value as Node | null, childPath(this.path, String((pair.key as { value: unknown }).value)), startOf(pair.key as Node));
  }

  /** A key this map does not have: blamed where the map is, since there is nothing else to point at. */
  absentChild(key: string): YamlValue {
    return new YamlValue(this.#ctx, undefined, childPath(this.path, key), this.#at);
  }

  list(): YamlValue[] | undefined {
    const node = this.node;
    if (!isSeq(node)) return this.expected('a list');
    return node.items.map((item, i) => {
      const child = item as Node | null;
      return new YamlValue(this.#ctx, child, childPath(this.path, i), child ? startOf(child) : this.#at);
    });
  }

  /**
   * Every item read by `read`; undefined if the list or any item is wrong (all reported).
   * `emptyMessage` makes an empty list an issue.
   */
  listOf<T>(read: (item: YamlValue) => T | undefined, emptyMessage?: string): T[] | undefined {
    const items = this.list();
    if (!items) return undefined;
    if (items.length === 0 && emptyMessage !== undefined) return this.report(emptyMessage);
    const out: T[] = [];
    let ok = true;
    for (const item of items) {
      const value = read(item);
      if (value === undefined) ok = false;
      else out.push(value);
    }
    return ok ? out : undefined;
  }

  string(what = 'a string'): string | undefined {
    return this.kind === 'string' && isScalar(this.node) ? String(this.node.value) : this.expected(what);
  }

  number(what = 'a number'): number | undefined {
    return this.kind === 'number' && isScalar(this.node) ? Number(this.node.value) : this.expected(what);
  }

  boolean(): boolean | undefined {
    return this.kind === 'boolean' && isScalar(this.node) ? Boolean(this.node.value) : this.expected('true or false');
  }
}

/** A map's entries by key; keys not given come back as 'missing' values blamed at the map. */
export class YamlMap {
  readonly value: YamlValue;
  readonly #entries: Map<string, YamlValue>;

  constructor(value: YamlValue, entries: Map<string, YamlValue>) {
    this.value = value;
    this.#entries = entries;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  get(key: string): YamlValue {
    return this.#entries.get(key) ?? this.value.absentChild(key);
  }

  entries(): [string, YamlValue][] {
    return [...this.#entries];
  }

  /** The key's value read by `read`, or a "missing" issue at the parent map. */
  required<T>(key: string, read: (value: YamlValue) => T | undefined): T | undefined {
    const value = this.get(key);
    if (!value.present) return value.report('required key is missing');
    return read(value);
  }

  /** The key's value read by `read`, or `fallback` when the key is not given. */
  optional<T>(key: string, read: (value: YamlValue) => T | undefined, fallback: T): T | undefined {
    const value = this.get(key);
    return value.present ? read(value) : fallback;
  }
}

function suggestion(key: string, allowed: readonly string[]): string {
  const best = suggestKey(key, allowed);
  return best === undefined ? '' : ` (did you mean ${best}?)`;
}

/**
 * `[::1]:8443` unquoted (in a `[ ]` list, or as any value) is YAML for a map from the list
 * [::1] to 8443, not the text: said so, with the quoted form, instead of a bare "got a map".
 */
function bracketedAddressHint(node: Node | null | undefined): string {
  if (!isMap(node) || node.items.length !== 1) return '';
  const pair = node.items[0];
  if (pair === undefined || !isSeq(pair.key) || !isScalar(pair.value)) return '';
  const host = pair.key.items.map((item) => (isScalar(item) ? String(item.source ?? item.value) : '…')).join(', ');
  const written = `[${host}]:${String(pair.value.source ?? pair.value.value)}`;
  return ` (YAML reads ${clipBare(written)} unquoted as a map: quote a bracketed IPv6 address, e.g. "${clipBare(written)}")`;
}

// Reads a YAML config file and vets it before anyone walks it: the bytes must be UTF-8, the
// syntax clean, flow nesting shallow, tags absent, aliases defined and their expansion bounded.
// Every mistake is collected as an issue instead of thrown, so one run of `meshcar check` lists
// them all. The checked view of the tree it hands out (YamlValue) lives in yaml-value.ts.

import { isUtf8 } from 'node:buffer';
import { BoundedReadError, readBoundedFile } from '../bounded-file.js';
import { fileErrorWords, tildeHint } from '../user-paths.js';
import { localShortage } from '../local-shortage.js';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { ConfigIssue } from './issues.js';
import { syntaxMessage } from './yaml-syntax.js';
import { nestingTooDeep } from './nesting-depth.js';
import { aliasTargets, type AliasTargets } from './yaml-aliases.js';
import { childPath, startOf, YamlValue, type Context } from './yaml-value.js';

export interface YamlSource {
  readonly file: string;
  /** The document's top-level value; undefined when the file could not be read, parsed, or is empty. */
  readonly root: YamlValue | undefined;
  /** Every issue found so far; validators append to it. */
  readonly issues: ConfigIssue[];
}

/** A config is a few KiB; a file far larger is a wrong path (a log, an image), not one to parse. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export async function readYamlSource(file: string): Promise<YamlSource> {
  let bytes: Buffer;
  try {
    // a regular file, read up to the cap (a FIFO or a device would block or never end)
    bytes = await readBoundedFile(file, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof BoundedReadError && err.code === 'too_large') return { file, root: undefined, issues: [tooLarge(file)] };
    const issue = wholeFileIssue(file, `cannot read the config file: ${err instanceof BoundedReadError ? `it ${err.message}` : readFailure(err, file)}`);
    return { file, root: undefined, issues: [localShortage((err as NodeJS.ErrnoException).code) === undefined ? issue : { ...issue, hostShortage: true }] };
  }
  // decoding would turn other bytes into U+FFFD silently ("ord\uFFFDrs"), far from the cause
  if (!isUtf8(bytes)) {
    if (isUtf16(bytes)) return { file, root: undefined, issues: [wholeFileIssue(file, 'the config file is not UTF-8 text (it is UTF-16: save it as UTF-8)')] };
    // located as every other issue is, by line and column (an offset sent a reader counting bytes)
    const bad = firstBadByte(bytes);
    const before = bytes.subarray(0, bad);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = bad - (before.lastIndexOf(0x0a) + 1) + 1;
    return { file, root: undefined, issues: [{ file, line, column, path: '', message: `the config file is not UTF-8 text: the byte 0x${(bytes[bad] ?? 0).toString(16)} here starts no UTF-8 character (a Latin-1 é, say): save the file as UTF-8` }] };
  }
  return parseYamlSource(file, bytes.toString('utf8'));
}

/** A UTF-16 byte order mark, either way round. */
function isUtf16(bytes: Buffer): boolean {
  return bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
}

/** The offset of the first byte that does not start a valid UTF-8 prefix (found by halving). */
function firstBadByte(bytes: Buffer): number {
  let good = 0;
  let bad = bytes.length;
  // the longest valid prefix: isUtf8 of [0, mid) may fail only on a character cut at mid, so
  // a prefix counts as good when one of the next three cut points is valid
  while (bad - good > 1) {
    const mid = (good + bad) >>> 1;
    let ok = false;
    for (let end = mid; end <= Math.min(mid + 3, bytes.length) && !ok; end++) ok = isUtf8(bytes.subarray(0, end));
    if (ok) good = mid;
    else bad = mid;
  }
  return good;
}

function tooLarge(file: string): ConfigIssue {
  return wholeFileIssue(file, 'the config file is larger than 1 MiB, the most a config may be (is this the right file?)');
}

export function parseYamlSource(file: string, text: string): YamlSource {
  // the parser recurses per level: thousands of [ or { or of block levels made it overflow its
  // stack (a few such files parsed in one process, as reloads do, ended it in V8's RegExp
  // compiler; some block ones escaped its own catch): refused before it runs (nesting-depth.ts)
  const deep = nestingTooDeep(text);
  if (deep !== undefined) {
    const at = new LineCounter();
    at.addNewLine(0);
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) at.addNewLine(i + 1);
    const { line, col } = at.linePos(deep.at);
    return { file, root: undefined, issues: [{ file, line, column: col, path: '', message: `YAML syntax: ${deep.message}` }] };
  }
  const lines = new LineCounter();
  // duplicate keys are found below, in one pass: the parser's own check compares each key with
  // every earlier one of its map (a file of 15,000 keys took 4 s to refuse, a reload as long)
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  // each error's hint reads its whole line: worded once per line and error, as a line of
  // 50,000 errors (`- &a - &a ...`, 125 KB) took 12 s of CPU, each error reading it anew
  const worded = new Map<string, string | undefined>();
  for (const err of doc.errors) {
    const { line, col } = lines.linePos(err.pos[0]);
    const key = `${line} ${err.code} ${err.message}`;
    // (the stack overflow is said once, wherever it unwinds: syntaxMessage keeps that count)
    const message = worded.has(key) && err.code !== 'RESOURCE_EXHAUSTION' ? worded.get(key) : syntaxMessage(err, lineAt(text, err.pos[0]), seen);
    worded.set(key, message);
    if (message !== undefined) issues.push({ file, line: Math.max(line, 1), column: col, path: '', message: `YAML syntax: ${message}` });
  }
  // lines ending in CR alone (classic Mac) are one long line to the parser: a flood of errors
  // on line 1, or a file that reads as one comment. One line says why instead
  const loneCr = issues.length > 0 || doc.contents === null ? text.search(/\r(?!\n)/) : -1;
  if (loneCr !== -1) {
    const { line, col } = lines.linePos(loneCr);
    return { file, root: undefined, issues: [{ file, line: Math.max(line, 1), column: col, path: '', message: LONE_CR }] };
  }
  // A tree with syntax errors is a guess; checking it would bury the real mistake in noise.
  if (issues.length > 0) return { file, root: undefined, issues };
  if (doc.contents === null) return { file, root: undefined, issues: [wholeFileIssue(file, 'the config file is empty')] };
  // `%YAML 1.1` switches the parser to 1.1's values (`no` is false, `0755` is 493): every key
  // and the README read YAML 1.2, so such a file is refused rather than read another way
  if (doc.directives?.yaml.explicit && doc.directives.yaml.version !== '1.2') {
    const { line, col } = lines.linePos(Math.max(0, text.indexOf('%YAML')));
    return { file, root: undefined, issues: [{ file, line: Math.max(line, 1), column: col, path: '', message: `YAML syntax: %YAML ${doc.directives.yaml.version} is not read here: a config is YAML 1.2 (remove the directive, or write %YAML 1.2)` }] };
  }
  checkUniqueKeys(doc.contents, (at, key, firstAt) => {
    const { line, col } = lines.linePos(at);
    // which key, and where it came first: one of the two is to go (the review: no name, no line)
    const quoted = JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}...` : key);
    issues.push({ file, line: Math.max(line, 1), column: col, path: '', message: `YAML syntax: Map keys must be unique: ${quoted} is given a second time here (first on line ${Math.max(lines.linePos(firstAt).line, 1)}); keep one` });
  });
  if (issues.length > 0) return { file, root: undefined, issues };
  // every alias's anchor, found once (yaml-aliases.ts): the parser's resolve walks the whole
  // document for each alias, which made reading N aliases take N × the file's size
  const aliases = aliasTargets(doc.contents);
  // tags and dangling aliases change what a value is before any reader sees it: stop, as above
  checkTagsAndAliases(aliases, doc.contents, '', (at, path, message) => {
    const { line, col } = lines.linePos(at);
    issues.push({ file, line: Math.max(line, 1), column: col, path, message });
  });
  if (issues.length > 0) return { file, root: undefined, issues };
  // what the aliases expand to, measured before any reader walks it: a config of 120 KB whose
  // anchors alias each other N × N froze a running sidecar's reload for 44 s, then applied 9
  // million authorize entries
  const written = nodeCount(doc.contents);
  const budget = Math.max(MIN_EXPANSION_BUDGET, EXPANSION_FACTOR * written);
  const measure = { cycle: false };
  if (expandedCount(aliases, doc.contents, budget, new Map(), measure) > budget) {
    const why = measure.cycle
      ? 'an alias (*name) stands inside its own anchor (&name): the value would contain itself'
      : `its YAML aliases (*name) expand to more than ${budget} values (the most is ${MIN_EXPANSION_BUDGET}, or ${EXPANSION_FACTOR} times the values the file writes out): write the values out, or alias smaller anchors`;
    return { file, root: undefined, issues: [wholeFileIssue(file, why)] };
  }
  const ctx: Context = { file, aliases, lines, issues };
  return { file, root: new YamlValue(ctx, doc.contents, '', startOf(doc.contents)), issues };
}

/**
 * Reports each key that repeats an earlier one of its map (YAML 1.2 §3.2.1.1: keys are unique),
 * as the parser's uniqueKeys did: scalar keys of the same value (`a` and `"a"`; `1` and `"1"`
 * differ), at the repeat. One set per map instead of the parser's comparison with every
 * earlier key.
 */
function checkUniqueKeys(node: unknown, report: (at: number, key: string, firstAt: number) => void): void {
  if (isMap(node)) {
    const seen = new Map<unknown, number>();
    for (const pair of node.items) {
      if (isScalar(pair.key)) {
        const first = seen.get(pair.key.value);
        if (first !== undefined) report(startOf(pair.key), String(pair.key.value), first);
        else seen.set(pair.key.value, startOf(pair.key));
      }
      checkUniqueKeys(pair.value, report);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) checkUniqueKeys(item, report);
  }
}

/**
 * Refuses every explicit tag (`!!binary b3JkZXJz` would become the string "orders", `!!timestamp`
 * a date, `!foo` an unknown type, all silently) and every alias whose anchor is not defined (it
 * would read as an empty value, far from the cause). Quoting says "a string" without a tag.
 */
function checkTagsAndAliases(aliases: AliasTargets, node: unknown, path: string, report: (at: number, path: string, message: string) => void): void {
  if (isAlias(node)) {
    if (!aliases.has(node)) report(startOf(node), path, `the alias *${node.source} names no anchor: define &${node.source} before it`);
    return;
  }
  if (isScalar(node) || isMap(node) || isSeq(node)) {
    if (node.tag !== undefined) {
      const tag = node.tag.replace(/^tag:yaml\.org,2002:/, '!!');
      report(startOf(node), path, `YAML tags are not supported (${tag}): write the plain value${isScalar(node) ? ', quoted if it must stay a string' : ''}`);
    }
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      checkTagsAndAliases(aliases, pair.key, path, report);
      checkTagsAndAliases(aliases, pair.value, childPath(path, key), report);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => checkTagsAndAliases(aliases, item, childPath(path, i), report));
  } else if (isPair(node)) {
    checkTagsAndAliases(aliases, node.value, path, report);
  }
}

/**
 * Aliases may make a config this many times the values it writes out, and always 200,000
 * values (reading one costs ~5 µs: about a second): an anchor of 2,000 IDs reused in a few
 * rules fits, an N × N expansion of a few hundred KB does not.
 */
const EXPANSION_FACTOR = 4;
const MIN_EXPANSION_BUDGET = 200_000;

/** Nodes as written (an alias counts as one). */
function nodeCount(node: unknown): number {
  if (isMap(node)) {
    let n = 1;
    for (const pair of node.items) n += nodeCount(pair.key) + nodeCount(pair.value);
    return n;
  }
  if (isSeq(node)) {
    let n = 1;
    for (const item of node.items) n += nodeCount(item);
    return n;
  }
  return 1;
}

const LONE_CR = 'YAML syntax: this line ends in a carriage return alone (CR, as classic Mac OS wrote), which the parser does not read as a line break: save the file with LF (or CRLF) line ends';

/** An anchor being measured: an alias reaching it again is a cycle. */
const MEASURING = -1;

/**
 * Nodes as a reader sees them, aliases followed; stops counting past `budget`. Each anchored
 * node is measured once (`sizes`); an alias inside its own anchor (a cycle) counts as past it.
 */
function expandedCount(aliases: AliasTargets, node: unknown, budget: number, sizes: Map<unknown, number>, found: { cycle: boolean }): number {
  if (isAlias(node)) {
    const target = aliases.get(node);
    if (target === undefined) return 1;
    const known = sizes.get(target);
    if (known === MEASURING) {
      found.cycle = true;
      return budget + 1;
    }
    if (known !== undefined) return known;
    sizes.set(target, MEASURING);
    const size = expandedCount(aliases, target, budget, sizes, found);
    sizes.set(target, size);
    return size;
  }
  let n = 1;
  if (isMap(node)) {
    for (const pair of node.items) {
      n += expandedCount(aliases, pair.key, budget, sizes, found) + expandedCount(aliases, pair.value, budget, sizes, found);
      if (n > budget) return n;
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      n += expandedCount(aliases, item, budget, sizes, found);
      if (n > budget) return n;
    }
  }
  return n;
}

/** The line of `text` holding `offset`, without its line break. */
function lineAt(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  return text.slice(start, end === -1 ? text.length : end);
}

function wholeFileIssue(file: string, message: string): ConfigIssue {
  return { file, line: 0, column: 0, path: '', message };
}

function readFailure(err: unknown, file: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return `no such file${tildeHint(file)}`;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  const shortage = localShortage(code);
  // (the open fails before the path is looked at: nothing is known of the file)
  if (shortage !== undefined) return `${shortage} (${code}); the file was not read`;
  // ELOOP, ENOTDIR, ... in words, not Node's text
  return fileErrorWords(err) ?? (err instanceof Error ? err.message : String(err));
}

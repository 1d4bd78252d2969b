// How deep a config's YAML nests, measured on its text before the parser runs: the parser
// recurses once per level, flow ([ ], { }) and block (`- - -`, keys indented one more each
// line) alike, and past some hundreds of levels overflows its stack, in places its own catch
// does not cover (a deep block list followed by a line less indented: `meshcar check` ended
// with a stack trace, a reload answered only "Maximum call stack size exceeded"). A config
// needs a few levels; the bounds here leave the parser far from its limit.

import { CST, Lexer } from 'yaml';

/** Where the text first nests too deep, and what to say; undefined when it does not. */
export function nestingTooDeep(text: string): { readonly at: number; readonly message: string } | undefined {
  const tokens = tokensNestTooDeep(text);
  if (tokens !== undefined) return tokens;
  const blockAt = blockDeeperThan(text, MAX_BLOCK_COLUMNS);
  if (blockAt !== -1) return { at: blockAt, message: `lists and maps nest too deep here: the line's content starts more than ${MAX_BLOCK_COLUMNS} columns in (spaces and - ? : indicators); a config needs a few levels` };
  return undefined;
}

/**
 * Block collections nest at most one level per column of a line's lead (its spaces and tabs,
 * and the `-`, `?`, `:` indicators before its content), so a bound on that lead bounds the depth.
 * The parser overflowed at about 900 levels: 256 columns keep it well clear, and no config
 * indents that far.
 */
const MAX_BLOCK_COLUMNS = 256;

/** What may follow a block indicator (`-`, `?`, `:`): a space, a tab or the line's end. */
const SEPARATORS = [0x20, 0x09, 0x0a, 0x0d];

/** The offset where a line's lead first passes `max` columns, or -1. */
function blockDeeperThan(text: string, max: number): number {
  let lineStart = 0;
  while (lineStart < text.length) {
    let i = lineStart;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09) i++; // a tab is no indentation, but separates `-` from what follows
      else if ((c === 0x2d || c === 0x3f || c === 0x3a) && (i + 1 === text.length || SEPARATORS.includes(text.charCodeAt(i + 1)))) i++;
      else break;
      if (i - lineStart > max) return i;
    }
    const end = text.indexOf('\n', i);
    if (end === -1) break;
    lineStart = end + 1;
  }
  return -1;
}

/** Flow collections ([ ], { }), with the keys inside them, nested deeper than this are refused before parsing. */
const MAX_FLOW_DEPTH = 64;

/** Block indicators (`a: b: c:`, `- &x - &x`, `? a: ? b:`) after a line's content began, outside [ ] and { }. */
const MAX_INLINE_INDICATORS = 64;

const FLOW_TOO_DEEP = `[ ] and { } nest more than ${MAX_FLOW_DEPTH} deep here; a config needs a few levels`;
const FLOW_KEYS_TOO_DEEP = `[ ] and { } and the keys in them (a: b: c: ...) nest more than ${MAX_FLOW_DEPTH} deep here; a config needs a few levels`;
const INLINE_TOO_DEEP = `lists and maps nest too deep here: more than ${MAX_INLINE_INDICATORS} - ? : indicators follow the line's content (a: b: c: ... opens a level each); a config needs a few levels`;

/**
 * Where the text first nests too deep in ways its lines' indentation does not show, counted on
 * the parser's own tokens (its Lexer keeps no stack: it counts flow levels), so what is quoted,
 * a comment or a plain value is what the parser will say: [ and {; the keys inside them
 * (`[a: b: c: ...]` nests a map per key); and block indicators after a line's content
 * (`k: k: k: ...`, 2,000 of them in 6 KB, overflowed the parser's stack). A scan of its own
 * opened a "quote" at any ' or ", even inside a plain value such as a'b or it's, and skipped
 * the rest of the line: `[a'b, [[[...]]]]` 300,000 deep reached the parser, 2-4 s of CPU and
 * 400-700 MB per load. It stops at the first level too deep, so such a file costs milliseconds.
 */
function tokensNestTooDeep(text: string): { readonly at: number; readonly message: string } | undefined {
  let depth = 0;
  // for each open [ or {: the key levels opened in it since its last comma, less the one a
  // { } entry has of its own (`{a: 1}` is one level, `[a: 1]` and `{a: b: 1}` two)
  const keyLevels: number[] = [];
  const ownKey = (type: string | null) => (type === 'flow-map-start' ? -1 : 0);
  const starts: Array<string | null> = [];
  let lineIndicators = 0;
  let lineContent = false;
  let at = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'flow-seq-start' || type === 'flow-map-start') {
      keyLevels.push(ownKey(type));
      starts.push(type);
      if (++depth > MAX_FLOW_DEPTH) return { at, message: FLOW_TOO_DEEP };
    } else if (type === 'flow-seq-end' || type === 'flow-map-end') {
      if (keyLevels.length > 0) depth -= Math.max(keyLevels.pop() ?? 0, 0) + 1;
      starts.pop();
    } else if (type === 'comma') {
      // a comma ends the entry, and the keys it opened
      if (keyLevels.length > 0) depth -= Math.max(keyLevels.splice(-1, 1, ownKey(starts.at(-1) ?? null))[0] ?? 0, 0);
    } else if (type === 'flow-error-end') {
      // a line indented less than its collection ends every open one (an error the parser reports)
      depth = 0;
      keyLevels.length = 0;
      starts.length = 0;
    } else if (type === 'map-value-ind' || type === 'explicit-key-ind' || type === 'seq-item-ind') {
      if (keyLevels.length > 0) {
        const keys = (keyLevels.at(-1) ?? 0) + 1;
        keyLevels[keyLevels.length - 1] = keys;
        if (keys > 0 && ++depth > MAX_FLOW_DEPTH) return { at, message: FLOW_KEYS_TOO_DEEP };
      } else if (lineContent && ++lineIndicators > MAX_INLINE_INDICATORS) return { at, message: INLINE_TOO_DEEP };
      // (those before the content are the line's lead, bounded by blockDeeperThan)
    } else if (token === '\n' || token === '\r\n') {
      lineIndicators = 0;
      lineContent = false;
    } else if (type !== 'space' && type !== 'doc-mode' && type !== 'scalar' && type !== 'newline') lineContent = true;
    // the markers stand for no text; every other token is its text
    if (type !== 'doc-mode' && type !== 'scalar' && type !== 'flow-error-end') at += token.length;
  }
  return undefined;
}

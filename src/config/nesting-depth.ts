// How deep a config's YAML nests, measured on its text before the parser runs: the parser
// recurses once per level, flow ([ ], { }) and block (`- - -`, keys indented one more each
// line) alike, and past some hundreds of levels overflows its stack, in places its own catch
// does not cover (a deep block list followed by a line less indented: `meshcar check` ended
// with a stack trace, a reload answered only "Maximum call stack size exceeded"). A config
// needs a few levels; the bounds here leave the parser far from its limit.

import { CST, Lexer } from 'yaml';

/** Where the text first nests too deep, and what to say; undefined when it does not. */
export function nestingTooDeep(text: string): { readonly at: number; readonly message: string } | undefined {
  const flowAt = flowDeeperThan(text, MAX_FLOW_DEPTH);
  if (flowAt !== -1) return { at: flowAt, message: `[ ] and { } nest more than ${MAX_FLOW_DEPTH} deep here; a config needs a few levels` };
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

/** Flow collections ([ ], { }) nested deeper than this are refused before parsing. */
const MAX_FLOW_DEPTH = 64;

/**
 * The offset where [ and { first nest deeper than `max`, or -1. Counted on the parser's own
 * tokens (its Lexer keeps no stack: it counts flow levels), so what is quoted, a comment or a
 * plain value is what the parser will say. A scan of its own opened a "quote" at any ' or ",
 * even inside a plain value such as a'b or it's, and skipped the rest of the line: `[a'b,
 * [[[...]]]]` 300,000 deep reached the parser, 2-4 s of CPU and 400-700 MB per load. It stops
 * at the first level too deep, so such a file costs a few milliseconds.
 */
function flowDeeperThan(text: string, max: number): number {
  let depth = 0;
  let at = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'flow-seq-start' || type === 'flow-map-start') {
      if (++depth > max) return at;
    } else if ((type === 'flow-seq-end' || type === 'flow-map-end') && depth > 0) depth--;
    // a line indented less than its collection ends every open one (an error the parser reports)
    else if (type === 'flow-error-end') depth = 0;
    // the other markers stand for no text; every other token is its text
    if (type !== 'doc-mode' && type !== 'scalar' && type !== 'flow-error-end') at += token.length;
  }
  return -1;
}

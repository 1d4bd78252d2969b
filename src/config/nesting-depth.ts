// How deep a config's YAML nests, measured on its text before the parser runs: the parser
// recurses once per level, flow ([ ], { }) and block (`- - -`, keys indented one more each
// line) alike, and past some hundreds of levels overflows its stack, in places its own catch
// does not cover (a deep block list followed by a line less indented: `meshcar check` ended
// with a stack trace, a reload answered only "Maximum call stack size exceeded"). A config
// needs a few levels; the bounds here leave the parser far from its limit.

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
 * The offset where [ and { first nest deeper than `max`, or -1. Quoted text and comments are
 * skipped; a bracket inside a plain value (a route template's {id}) opens and closes its own.
 */
function flowDeeperThan(text: string, max: number): number {
  let depth = 0;
  let quote = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0) {
      if (c === 0x5c && quote === 0x22) i++; // an escape inside "..."
      else if (c === quote) quote = 0;
      else if (c === 0x0a) quote = 0; // a line break: a stray quote does not swallow the file
    } else if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x23 && (i === 0 || text.charCodeAt(i - 1) <= 0x20)) {
      const end = text.indexOf('\n', i);
      if (end === -1) break;
      i = end;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return -1;
}


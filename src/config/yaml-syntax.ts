// The YAML parser's syntax errors as `meshcar check` and a reload print them: its own words
// where they say what to mend, ours where they name an API, a JavaScript failure, or a symptom
// far from the usual cause (an unquoted route template or IPv6 address). yaml-source.ts puts
// file:line:column in front.

import type { YAMLError } from 'yaml';
import { invisibleCharacters } from './odd-characters.js';

/** An IPv6 address (a zone too: fe80::1%eth0) with a port, written bare after a key or a dash: `listen: [::]:15443`. */
const BARE_IPV6_PORT = /(?:^|[\s:,-])\[[0-9A-Fa-f:.]*:[0-9A-Za-z:.%_-]*\]:\d/;

/**
 * The message for one parser error; `lineText` is the line it points at. Undefined for an
 * error that repeats one already worded (`seen`: the codes met so far in this file).
 */
export function syntaxMessage(err: YAMLError, lineText: string, seen: Set<string>): string | undefined {
  const repeat = seen.has(err.code);
  seen.add(err.code);
  // The parser's own wording for this one names an API, not the fix.
  if (err.code === 'MULTIPLE_DOCS') return 'the file holds more than one YAML document (---); a config is one document';
  // the parser turns its stack overflow (block nesting hundreds deep: `- - - - ...`, or keys
  // indented one more each line) into an error; its message, "Maximum call stack size
  // exceeded", said neither what nor how to mend it, once per level it unwound through
  if (err.code === 'RESOURCE_EXHAUSTION') return repeat ? undefined : 'lists and maps nest hundreds deep here, more than the YAML parser can read; a config needs a few levels';
  let message = err.message;
  // a no-break space pasted from a web page looks like a space and is none to YAML
  const invisible = invisibleCharacters(lineText);
  if (invisible !== '') return `${message}${invisible}`;
  // `[` starts a YAML list: [::1]:8080 bare reads as a list and then a stray :8080
  if (BARE_IPV6_PORT.test(lineText)) return `${message} (quote an IPv6 address with its port: "[::1]:8080")`;
  // Route templates like /charges/{id} in a [...] list are the usual cause: braces end a bare value there.
  if (/flow/.test(message) && /[{}]/.test(lineText)) message += ' (inside [...] quote values holding { } [ ] or commas: ["/charges/{id}"])';
  return message;
}

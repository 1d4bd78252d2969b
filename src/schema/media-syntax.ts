// A Content-Type read as RFC 9110 writes one media type (§8.3.1: `type "/" subtype`, then
// parameters, §5.6.6: `;` name=token or quoted-string). A value that is not one
// (`application/json, text/plain`) was matched as written, fell to `*/*`, and its body went
// on unchecked, while Rails and Rack take the part before `,` or `;` for the type
// (application/json, parsed): no two readers agree on such a value, so it is refused.

import { clip } from '../clip.js';
import { MAX_QUOTED } from './violations.js';
import { trailingOwsTrimmed } from '../http/raw-headers.js';

const TOKEN_CHAR = "[!#$%&'*+.^_`|~0-9A-Za-z-]";
const TOKEN = `${TOKEN_CHAR}+`;

/** The type and subtype, from the start, with the optional whitespace before it. */
const TYPE = new RegExp(`[ \\t]*${TOKEN}/${TOKEN}`, 'y');

/** One parameter (or a stray `;`, which RFC 9110 allows): name, then the value as a token or a quoted string. */
const PARAMETER = new RegExp(`[ \\t]*;[ \\t]*(?:(${TOKEN})[ \\t]*=[ \\t]*("(?:[^"\\\\]|\\\\.)*"|${TOKEN_CHAR}*))?[ \\t]*`, 'y');

export type MediaParameters = ReadonlyArray<readonly [name: string, value: string]>;

/** A Content-Type's parameters as [name, value] pairs (a quoted value unquoted), or undefined when it is not one media type. */
export function mediaParameters(contentType: string): MediaParameters | undefined {
  // by a scan from the end: /[ \t]+$/ is retried from every space of a run that is not trailing
  const text = trailingOwsTrimmed(contentType);
  TYPE.lastIndex = 0;
  if (!TYPE.test(text)) return undefined;
  const parameters: Array<[string, string]> = [];
  if (TYPE.lastIndex === text.length) return parameters;
  PARAMETER.lastIndex = TYPE.lastIndex;
  while (PARAMETER.lastIndex < text.length) {
    const start = PARAMETER.lastIndex;
    const m = PARAMETER.exec(text);
    if (m === null || PARAMETER.lastIndex === start) return undefined;
    const [, name, value] = m;
    if (name === undefined) continue;
    parameters.push([name, (value as string).startsWith('"') ? (value as string).slice(1, -1).replace(/\\(.)/g, '$1') : (value as string)]);
  }
  return parameters;
}

/** The violation's message for a Content-Type that is not one media type (mediaParameters gave undefined). */
export function notOneMediaType(contentType: string): string {
  return `content_type: ${clip(JSON.stringify(contentType), MAX_QUOTED)} is not one media type (type/subtype, then ;name=value parameters, RFC 9110); servers read such a value differently, so send one, such as application/json`;
}

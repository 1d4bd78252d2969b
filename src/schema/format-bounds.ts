// A bound on the length of the values some formats take, checked before ajv-formats' own check:
// those cost time in proportion to the value (date-time splits it with a regular expression,
// regex compiles it), and on a 1 MiB string a review measured 190-250 ms of the event loop for
// date-time, 350-550 for regex, ~240 for uri-reference and uri-template, ~170 for email, per
// request, as long as the body a caller may send. No real value of these formats comes near the
// bounds; one past its bound is refused as not of the format, at once.

import type { Ajv } from 'ajv';

/** The longest value each format takes (characters). */
export const FORMAT_MAX_LENGTH: Readonly<Record<string, number>> = Object.freeze({
  // RFC 3339: ~35 characters, with a fraction of a second as long as one likes
  'date-time': 256,
  time: 256,
  date: 64,
  // RFC 5321: 64 for the local part, 255 for the domain
  email: 320,
  regex: 16_384,
  'uri-reference': 65_536,
  'uri-template': 65_536,
});

type Test = (value: string) => boolean;

/** Wraps ajv's definitions of the formats above (added by ajv-formats) with their bounds; what they compare (formatMinimum) is kept. */
export function boundFormatLengths(ajv: Ajv): void {
  for (const [name, max] of Object.entries(FORMAT_MAX_LENGTH)) {
    const definition = ajv.formats[name] as unknown;
    const test = testOf(definition);
    if (test === undefined) continue;
    const bounded: Test = (value) => value.length <= max && test(value);
    const isObject = typeof definition === 'object' && definition !== null && !(definition instanceof RegExp);
    ajv.addFormat(name, (isObject ? { ...(definition as object), validate: bounded } : bounded) as Parameters<Ajv['addFormat']>[1]);
  }
}

/** A format definition's check as a function: a RegExp, a function, or an object with either as `validate`; undefined for anything else (async: left as it is). */
function testOf(definition: unknown): Test | undefined {
  if (definition instanceof RegExp) return (value) => definition.test(value);
  if (typeof definition === 'function') return definition as Test;
  if (typeof definition !== 'object' || definition === null || (definition as { async?: boolean }).async === true) return undefined;
  return testOf((definition as { validate?: unknown }).validate);
}

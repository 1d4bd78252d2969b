// A message head as undici hands it over (a flat [name, value, name, value, ...] list of raw
// Buffers) turned into the headers object the rest of the sidecar speaks: names lower-case,
// repeated fields combined the way node:http's IncomingMessage combines them, so a response
// read by undici is forwarded exactly as one read by node:http was.

import type { IncomingHttpHeaders } from 'node:http';

/**
 * Fields that carry one value: a repeat is dropped (first wins), as node:http does. Combining
 * two Content-Types or Locations with a comma would forge a value neither side sent.
 */
const SINGLE_VALUED: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** The raw list as an IncomingHttpHeaders: set-cookie an array, other repeats joined with ", ". */
export function headersOfRaw(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  // no prototype: a field named __proto__ is a header like any other, not a prototype swap
  const headers = Object.create(null) as IncomingHttpHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer | string).toString('latin1').toLowerCase();
    const value = (raw[i + 1] as Buffer | string).toString('latin1');
    const seen = headers[name];
    if (seen === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (seen as string[]).push(value);
    } else if (!SINGLE_VALUED.has(name)) {
      headers[name] = `${seen as string}, ${value}`;
    }
  }
  return headers;
}

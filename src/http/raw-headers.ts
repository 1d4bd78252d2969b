// A message head as undici hands it over (a flat [name, value, name, value, ...] list of raw
// Buffers) turned into the headers object the rest of the sidecar speaks: names lower-case,
// repeated fields combined the way node:http's IncomingMessage combines them, so a response
// read by undici is forwarded exactly as one read by node:http was. The single-valued set
// (a repeat dropped, the first wins) is the one our HTTP/2 codec applies to what it decodes.
// Values lose the optional whitespace around them (SP and HTAB, RFC 9110 §5.5): undici's
// parser keeps what follows a value, which is legal HTTP/1.1 but no valid HTTP/2 field value.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { SINGLE_VALUED } from '../h2/index.js';
import { connectionScoped, isHopByHop } from './hop-by-hop.js';

/** The raw list as an IncomingHttpHeaders: set-cookie an array, other repeats joined with ", ". */
export function headersOfRaw(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  return collect(raw, false).headers;
}

/** An app's response head made fit to forward, and whether its body is chunked (trailers may follow). */
export interface ForwardableHead {
  readonly headers: OutgoingHttpHeaders;
  readonly chunked: boolean;
  /** The app's Transfer-Encoding, all its fields joined (undefined: none), for responseCodingProblem. */
  readonly transferEncoding: string | undefined;
}

/**
 * The response head as forwardableHeaders(headersOfRaw(raw)) would make it, in one pass and one
 * object (the two passes were 2.2 % of the inbound's busy CPU): hop-by-hop fields and the ones
 * Connection names are left out. `Trailer` stays: it announces trailers the caller should expect.
 */
export function forwardableResponseHead(raw: readonly (Buffer | string)[]): ForwardableHead {
  const { headers, connection, transferEncoding } = collect(raw, true);
  const named = connection === undefined ? undefined : connectionScoped(connection);
  if (named !== undefined) for (const name of named) delete headers[name];
  return { headers: headers as OutgoingHttpHeaders, chunked: transferEncoding !== undefined, transferEncoding };
}

/** An app's response head as a list: `[':status', <the writer's>, name, value, ...]`. */
export interface ForwardableList {
  readonly list: string[];
  readonly chunked: boolean;
  /** As ForwardableHead's. */
  readonly transferEncoding: string | undefined;
}

/**
 * The response head of forwardableResponseHead as a flat list with no object in between, for
 * a writer that takes one (our HTTP/2 codec, node:http's writeHead): names lower-case, each
 * repeat its own field (an HTTP/2 peer joins them as node:http would), single-valued fields
 * first wins, `x-meshcar-error` left out (only a sidecar says it answered). Slot 1 is the
 * writer's to fill with the status, so the list goes out without a copy.
 */
export function forwardableResponseList(raw: readonly (Buffer | string)[]): ForwardableList {
  const list: string[] = [':status', ''];
  let connection: string | undefined;
  let transferEncoding: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer | string).toString('latin1').toLowerCase();
    const value = owsTrimmed((raw[i + 1] as Buffer | string).toString('latin1'));
    if (name !== 'trailer' && isHopByHop(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      continue;
    }
    if (name === 'x-meshcar-error' || (SINGLE_VALUED.has(name) && listHas(list, name))) continue;
    list.push(name, value);
  }
  const named = connection === undefined ? undefined : connectionScoped(connection);
  // slots 0 and 1 (:status) stay whatever Connection names
  return { list: named === undefined ? list : list.filter((_, i) => i < 2 || ((i & 1) === 1 ? !named.has(list[i - 1]!) : !named.has(list[i]!))), chunked: transferEncoding !== undefined, transferEncoding };
}

/**
 * An HTTP/2 head as decoded (names lower-case and checked, pseudo-headers first: our codec's
 * and Node's rawHeaders) made fit for an HTTP/1.1 writer that takes a list (node:http's
 * writeHead), with no object in between: pseudo-headers and hop-by-hop fields left out, each
 * repeat its own line, single-valued fields first wins (two Content-Lengths, even equal ones,
 * are a parse error to the app).
 */
export function forwardableFieldList(raw: readonly string[]): string[] {
  const list: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a /* ':' */ || isHopByHop(name)) continue;
    if (SINGLE_VALUED.has(name) && listHas(list, name, 0)) continue;
    list.push(name, raw[i + 1]!);
  }
  return list;
}

/** Whether `name` is among the list's fields from index `from` (a name's index) on. */
function listHas(list: readonly string[], name: string, from = 2): boolean {
  for (let i = from; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

/** `value` without leading and trailing SP and HTAB (only those: obs-text such as 0xA0 is a value's own). */
export function owsTrimmed(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/**
 * `value` without the SP and HTAB at its end, by a scan from the end: /[ \t]+$/ is retried from
 * every space of a run that does not reach the end (time square in the run; V8 does not count a
 * new start as a backtrack, so its linear-time fallback never takes it over).
 */
export function trailingOwsTrimmed(value: string): string {
  let end = value.length;
  while (end > 0 && isOws(value.charCodeAt(end - 1))) end--;
  return end === value.length ? value : value.slice(0, end);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

function collect(raw: readonly (Buffer | string)[], forwardable: boolean): { headers: IncomingHttpHeaders; connection: string | undefined; transferEncoding: string | undefined } {
  // no prototype: a field named __proto__ is a header like any other, not a prototype swap
  const headers = Object.create(null) as IncomingHttpHeaders;
  let connection: string | undefined;
  let transferEncoding: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer | string).toString('latin1').toLowerCase();
    const value = owsTrimmed((raw[i + 1] as Buffer | string).toString('latin1'));
    if (forwardable && name !== 'trailer' && isHopByHop(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      continue;
    }
    const seen = headers[name];
    if (seen === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (seen as string[]).push(value);
    } else if (!SINGLE_VALUED.has(name)) {
      // an empty repeat joined as ", " would end the value in whitespace, which no HTTP/2 field
      // may (the meshcar codec's client resets such an answer, Node's drops the field): "v,"
      headers[name] = value === '' ? `${seen as string},` : `${seen as string}, ${value}`;
    }
  }
  return { headers, connection, transferEncoding };
}

/**
 * The size of a field section as HTTP/2 counts it against SETTINGS_MAX_HEADER_LIST_SIZE
 * (RFC 9113 §6.5.2): each field's name and value length plus 32. Node hands HTTP/2 fields over
 * as one character per byte, so `length` is the octet count.
 */
export function headerListSize(raw: readonly string[]): number {
  let size = 0;
  for (const part of raw) size += part.length;
  return size + 16 * raw.length;
}

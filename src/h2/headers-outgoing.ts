// Outgoing heads: a header object (or a caller's flat list) becomes the flat [name, value, ...]
// list HPACK encodes, pseudo-headers first and names lower-cased, held to the rules the peer
// would otherwise reset the stream for (field-rules.ts, and which pseudo-headers each kind of
// head may carry). A breach throws InvalidHeaderError before anything is sent.

import { HeadKind, type OutgoingHeaders } from './headers.js';
import { BAD_VALUE, Kind, TE_REFUSED, cachedKind, nameKind } from './field-rules.js';

/** The pseudo-headers a request or response may carry (none other may be sent), one bit each; 0 for any other name. */
function pseudoBit(name: string): number {
  switch (name) {
    case ':status':
      return 1;
    case ':method':
      return 2;
    case ':scheme':
      return 4;
    case ':path':
      return 8;
    case ':authority':
      return 16;
    default:
      return 0;
  }
}

export class InvalidHeaderError extends TypeError {
  override readonly name = 'InvalidHeaderError';
  readonly code = 'ERR_H2_INVALID_HEADER';
}

/** The pseudo-header bits (pseudoBit) each kind of head may carry. */
const PSEUDO_ALLOWED = [2 | 4 | 8 | 16, 1, 0];

/**
 * What `kind` of head may carry: a request its four pseudo-headers, a response (final or 1xx)
 * :status and nothing else, trailers none (RFC 9113 §8.1, §8.3). The peer would reset the
 * stream for any of these; refused here, with a stable error, before anything is sent.
 */
function checkKind(pseudoSeen: number, kind: HeadKind | undefined): void {
  if (kind === undefined) return;
  const extra = pseudoSeen & ~PSEUDO_ALLOWED[kind]!;
  if (extra !== 0) throw new InvalidHeaderError(kind === HeadKind.Trailers ? 'pseudo-headers are not allowed in trailers' : `a pseudo-header not allowed in a ${kind === HeadKind.Request ? 'request' : 'response'}`);
  if (kind === HeadKind.Response && pseudoSeen === 0) throw new InvalidHeaderError('a response head without :status');
}

/** RFC 7541 §4.1's size of a header list: each field's name and value octets plus 32 (what SETTINGS_MAX_HEADER_LIST_SIZE counts). */
export function headerListSize(flat: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < flat.length; i += 2) size += flat[i]!.length + flat[i + 1]!.length + 32;
  return size;
}

/**
 * headerListSize of an outgoing header object, measured where it is: the response head of every
 * request is measured before it is sent (peer-limits.ts), and flattening it for that would copy
 * each head once more. A field of several values counts once per value, as flattened.
 */
export function headerObjectSize(headers: OutgoingHeaders): number {
  let size = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const one of value as readonly string[]) size += name.length + String(one).length + 32;
    else size += name.length + String(value).length + 32;
  }
  return size;
}

/**
 * An outgoing header object as a flat list, pseudo-headers first; or a flat list, checked as it
 * is (names already lower-case, pseudo-headers already first) and returned without a copy.
 * With `kind`, also held to the pseudo-headers that kind of head may carry (checkKind).
 */
export function flattenHeaders(headers: OutgoingHeaders | readonly string[], kind?: HeadKind): string[] {
  if (Array.isArray(headers)) return checkedList(headers as string[], kind);
  const out: string[] = [];
  /** Where the next pseudo-header goes: they must precede every regular field. */
  let pseudoEnd = 0;
  let pseudoSeen = 0;
  for (const key in headers) {
    const value = (headers as OutgoingHeaders)[key];
    if (value === undefined || value === null) continue;
    let name = key;
    let nk = cachedKind(key);
    if (nk === undefined) {
      name = key.toLowerCase();
      nk = nameKind(name);
    }
    if (nk === Kind.Invalid) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(key)}`);
    if (nk === Kind.ConnectionSpecific) throw new InvalidHeaderError(`connection-specific header ${name} is not allowed in HTTP/2`);
    if (nk === Kind.Pseudo) {
      const bit = pseudoBit(name);
      if (bit === 0) throw new InvalidHeaderError(`unknown pseudo-header ${name}`);
      pseudoSeen |= bit;
    }
    if (Array.isArray(value)) {
      if (nk === Kind.Pseudo || nk === Kind.Te) throw new InvalidHeaderError(`${name} takes one value`);
      for (const v of value) {
        const s = String(v);
        if (BAD_VALUE.test(s)) throw new InvalidHeaderError(`invalid value for header ${name}`);
        out.push(name, s);
      }
      continue;
    }
    const s = typeof value === 'string' ? value : String(value);
    if (BAD_VALUE.test(s)) throw new InvalidHeaderError(`invalid value for header ${name}`);
    if (nk === Kind.Te && s !== 'trailers') throw new InvalidHeaderError(TE_REFUSED);
    if (nk === Kind.Pseudo && pseudoEnd !== out.length) out.splice(pseudoEnd, 0, name, s);
    else out.push(name, s);
    if (nk === Kind.Pseudo) pseudoEnd += 2;
  }
  checkKind(pseudoSeen, kind);
  return out;
}

/** A caller's flat list, held to the rules flattenHeaders applies to an object's fields. */
function checkedList(list: string[], kind: HeadKind | undefined): string[] {
  if ((list.length & 1) !== 0) throw new InvalidHeaderError('a header list needs a value for every name');
  let regularSeen = false;
  /** The pseudo-headers seen so far, one bit each: a list, unlike an object, can repeat a name. */
  let pseudoSeen = 0;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const nk = typeof name === 'string' ? nameKind(name) : Kind.Invalid;
    // nameKind also refuses upper case: a list is sent as it is, not lower-cased for the caller
    if (nk === Kind.Invalid) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(name)}`);
    if (nk === Kind.ConnectionSpecific) throw new InvalidHeaderError(`connection-specific header ${name} is not allowed in HTTP/2`);
    if (nk === Kind.Pseudo) {
      if (regularSeen) throw new InvalidHeaderError(`pseudo-header ${name} after a regular header`);
      const bit = pseudoBit(name);
      if (bit === 0) throw new InvalidHeaderError(`unknown pseudo-header ${name}`);
      if ((pseudoSeen & bit) !== 0) throw new InvalidHeaderError(`duplicate pseudo-header ${name}`);
      pseudoSeen |= bit;
    } else regularSeen = true;
    if (typeof value !== 'string' || BAD_VALUE.test(value)) throw new InvalidHeaderError(`invalid value for header ${name}`);
    if (nk === Kind.Te && value !== 'trailers') throw new InvalidHeaderError(TE_REFUSED);
  }
  checkKind(pseudoSeen, kind);
  return list;
}

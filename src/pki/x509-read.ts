// Reading fields Node's X509Certificate does not hand over ready-made.

import type { X509Certificate } from 'node:crypto';

/**
 * URI subject alternative names. Node lists SANs as "URI:a, DNS:b" and quotes (JSON) any entry
 * that holds a comma or quote, so a crafted SAN cannot split into two entries here.
 */
export function uriSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const uris: string[] = [];
  const entry = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const match of text.matchAll(entry)) {
    if (match[1] !== 'URI') continue;
    const raw = match[2] as string;
    uris.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return uris;
}

/** DER length at `at` (short or long form): [length, offset of the contents]. */
export function derLength(der: Buffer, at: number): [number, number] {
  const first = der[at] ?? 0;
  if (first < 0x80) return [first, at + 1];
  const bytes = first & 0x7f;
  if (bytes === 0 || bytes > 4) return [-1, at];
  let length = 0;
  for (let i = 1; i <= bytes; i++) length = length * 256 + (der[at + i] ?? 0);
  return [length, at + 1 + bytes];
}

/** A DER element: its tag, and where its contents start and end. */
export interface Element {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** The TLV at `at`, or undefined when its length is malformed or runs past `limit`. */
export function elementAt(der: Buffer, at: number, limit: number): Element | undefined {
  if (at + 2 > limit) return undefined;
  const tag = der[at] as number;
  const [length, start] = derLength(der, at + 1);
  if (length < 0 || start + length > limit) return undefined;
  return { tag, start, end: start + length };
}

/** The extension id-ce-authorityKeyIdentifier (2.5.29.35) as its OID is written in DER. */
const AUTHORITY_KEY_ID_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);

/**
 * The authorityKeyIdentifier's keyIdentifier (the issuer's key id) as colon hex, or undefined.
 * Read straight from the DER (Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE,
 * extnValue OCTET STRING { SEQUENCE { [0] keyIdentifier ... } } }), without an ASN.1 library.
 */
export function authorityKeyId(cert: X509Certificate): string | undefined {
  const der = cert.raw;
  let at = der.indexOf(AUTHORITY_KEY_ID_OID);
  if (at < 0) return undefined;
  at += AUTHORITY_KEY_ID_OID.length;
  if (der[at] === 0x01) at += 2 + (der[at + 1] ?? 0); // critical
  for (const tag of [0x04, 0x30]) {
    if (der[at] !== tag) return undefined;
    at = derLength(der, at + 1)[1];
  }
  if (der[at] !== 0x80) return undefined;
  const [length, start] = derLength(der, at + 1);
  if (length <= 0 || start + length > der.length) return undefined;
  return der.subarray(start, start + length).toString('hex').toUpperCase().match(/../g)?.join(':');
}

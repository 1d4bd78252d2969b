// The keyUsage (RFC 5280 §4.2.1.3) and basicConstraints (§4.2.1.9) extensions of a DER
// certificate, read by walking the structure (Certificate → tbsCertificate → [3] extensions →
// the one whose OID is asked for), not by searching the bytes: a subject or SAN may hold any
// bytes, an OID's among them. Node's X509Certificate hands over neither as written: its
// `keyUsage` is the extended key usage, and its `ca` is OpenSSL's X509_check_ca(), which is
// false for a certificate whose basicConstraints say cA when its keyUsage lacks keyCertSign.
// No ASN.1 library: the sidecar never loads node-forge.

import { elementAt, type Element } from './x509-read.js';

/** id-ce-keyUsage (2.5.29.15) and id-ce-basicConstraints (2.5.29.19), as their OIDs' contents are written in DER. */
const KEY_USAGE_OID = Buffer.from([0x55, 0x1d, 0x0f]);
const BASIC_CONSTRAINTS_OID = Buffer.from([0x55, 0x1d, 0x13]);

/** The bits of keyUsage's first octet (bit 0, digitalSignature, is 0x80). */
export const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

/** The children of a constructed element, in order (stops at the first malformed one). */
function* childrenOf(der: Buffer, parent: Element): Generator<Element> {
  let at = parent.start;
  while (at < parent.end) {
    const child = elementAt(der, at, parent.end);
    if (child === undefined) return;
    yield child;
    at = child.end;
  }
}

/** The element extnValue's OCTET STRING holds, for the extension `oid`; undefined when absent or unreadable. */
function extensionValue(der: Buffer, oid: Buffer): Element | undefined {
  const certificate = elementAt(der, 0, der.length);
  if (certificate?.tag !== 0x30) return undefined;
  const tbs = elementAt(der, certificate.start, certificate.end);
  if (tbs?.tag !== 0x30) return undefined;
  for (const field of childrenOf(der, tbs)) {
    if (field.tag !== 0xa3) continue; // [3] extensions, the last field of a v3 TBSCertificate
    const extensions = elementAt(der, field.start, field.end);
    if (extensions?.tag !== 0x30) return undefined;
    for (const extension of childrenOf(der, extensions)) {
      const parts = [...childrenOf(der, extension)];
      const id = parts[0];
      if (id?.tag !== 0x06 || !der.subarray(id.start, id.end).equals(oid)) continue;
      // extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING
      const value = parts.find((part) => part.tag === 0x04);
      return value && elementAt(der, value.start, value.end);
    }
    return undefined;
  }
  return undefined;
}

/**
 * The first octet of the certificate's keyUsage bits (KEY_USAGE masks), 0 when the extension
 * names no bit; undefined when the certificate has no keyUsage extension or cannot be read.
 */
export function keyUsageBits(der: Buffer): number | undefined {
  const bits = extensionValue(der, KEY_USAGE_OID);
  if (bits?.tag !== 0x03) return undefined;
  // the unused-bits octet, then the bits; a BIT STRING of no bits names none
  return bits.end - bits.start >= 2 ? (der[bits.start + 1] as number) : 0;
}

/**
 * Whether the certificate's basicConstraints say cA (SEQUENCE { cA BOOLEAN DEFAULT FALSE,
 * pathLenConstraint INTEGER OPTIONAL }), whatever its keyUsage. An extension present but not
 * readable counts as cA: a certificate that might sign is no leaf.
 */
export function basicConstraintsCa(der: Buffer): boolean {
  const constraints = extensionValue(der, BASIC_CONSTRAINTS_OID);
  if (constraints === undefined) return false;
  if (constraints.tag !== 0x30) return true;
  const first = elementAt(der, constraints.start, constraints.end);
  if (first === undefined) return constraints.end > constraints.start;
  return first.tag === 0x01 && first.end > first.start && der[first.start] !== 0;
}

// Reads the URI subjectAltNames of a DER certificate. Node's X509Certificate only offers SANs
// as one display string ("URI:a, DNS:b"), whose quoting rules a crafted certificate can play
// with; identity decisions deserve the exact ASN.1, so this walks the extension itself.

import { asn1, fromDer, OID, type Asn1 } from '../pki/der.js';

/** The URI SANs of the certificate, in order, or a reason why the DER cannot be read. */
export function uriSansOfDer(der: Buffer): string[] | string {
  try {
    return readUriSans(fromDer(der));
  } catch (err) {
    return `the certificate cannot be parsed: ${(err as Error).message}`;
  }
}

function childrenOf(node: Asn1 | undefined): Asn1[] {
  if (!node || !Array.isArray(node.value)) throw new Error('unexpected ASN.1 structure');
  return node.value as Asn1[];
}

function readUriSans(certificate: Asn1): string[] {
  const tbs = childrenOf(certificate)[0];
  // extensions are the [3] EXPLICIT field of the TBSCertificate; absent means no SANs at all
  const wrapper = childrenOf(tbs).find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
  if (!wrapper) return [];
  const uris: string[] = [];
  let sanExtensions = 0;
  for (const extension of childrenOf(childrenOf(wrapper)[0])) {
    const parts = childrenOf(extension);
    if (asn1.derToOid(String(parts[0]?.value ?? '')) !== OID.subjectAltName) continue;
    sanExtensions += 1;
    const octets = parts[parts.length - 1];
    for (const name of childrenOf(asn1.fromDer(String(octets?.value ?? '')))) {
      // GeneralName [6] uniformResourceIdentifier, IA5String carried as implicit primitive
      if (name.tagClass === asn1.Class.CONTEXT_SPECIFIC && name.type === 6) uris.push(String(name.value));
    }
  }
  // RFC 5280 §4.2: an extension appears at most once; two SAN extensions is a forgery smell
  if (sanExtensions > 1) throw new Error('the certificate carries more than one subjectAltName extension');
  return uris;
}

// Builds an X.509 v3 certificate: node-forge encodes the TBSCertificate, Node's native crypto
// signs it off the event loop. forge's own JavaScript RSA signing costs ~25 ms a certificate
// and it cannot encode EC keys at all, so it only ever does the ASN.1 here.

import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { asn1, bitString, fromDer, integerFromBytes, oid, seq, signatureAlgorithm, toDer, toPem, type Asn1, OID } from './der.js';
import { digestForSignatureOid, signAsync, signatureOidFor } from './keys.js';

export { signAsync } from './keys.js';

export interface DistinguishedName {
  readonly organization?: string;
  readonly commonName?: string;
}

/** An extension in node-forge's descriptive form (name plus fields), or with a ready value. */
export type ExtensionSpec = Record<string, unknown> & { name?: string; id?: string; critical?: boolean };

export interface CertificateSpec {
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
  readonly subjectPublicKeySpki: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly ExtensionSpec[];
  readonly signingKey: KeyObject;
  /** Hex serial; a fresh random one when absent. */
  readonly serialHex?: string;
}

export interface BuiltCertificate {
  readonly pem: string;
  readonly der: Buffer;
  readonly serialHex: string;
  /** As encoded: whole seconds. */
  readonly notAfter: Date;
}

/** A random positive serial of 128 bits (RFC 5280 allows 20 octets; CA/B asks for ≥ 64 random bits). */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // clear the sign bit so the INTEGER is positive, and keep the first octet non-zero so the
  // DER encoding stays minimal at exactly 16 octets
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const spki = fromDer(spkiDer);
  const bits = (spki.value as Asn1[])[1] as Asn1;
  const bytes = Buffer.from(bits.value as string, 'binary').subarray(1); // drop unused-bits octet
  return createHash('sha1').update(bytes).digest();
}

export function encodeName(name: DistinguishedName): Asn1 {
  const rdns: Asn1[] = [];
  const add = (attributeOid: string, value: string | undefined) => {
    if (value === undefined) return;
    const utf8 = forge.util.encodeUtf8(value);
    rdns.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
      seq([oid(attributeOid), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, utf8)]),
    ]));
  };
  add(OID.organizationName, name.organization);
  add(OID.commonName, name.commonName);
  return seq(rdns);
}

function encodeTime(date: Date): Asn1 {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050
  if (date.getUTCFullYear() < 2050) {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date));
  }
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

export function encodeExtensions(extensions: readonly ExtensionSpec[]): Asn1 {
  // a throwaway forge certificate fills in forge's descriptive extensions (keyUsage flags,
  // altNames, ...); identifiers we computed ourselves arrive with a ready value
  const scratch = forge.pki.createCertificate();
  scratch.setExtensions(extensions.map((e) => ({ ...e })));
  // certificateExtensionsToAsn1 is public in node-forge but missing from its type definitions
  const pki = forge.pki as unknown as { certificateExtensionsToAsn1(extensions: unknown[]): Asn1 };
  return pki.certificateExtensionsToAsn1(scratch.extensions);
}


export async function buildCertificate(spec: CertificateSpec): Promise<BuiltCertificate> {
  const serialHex = spec.serialHex ?? randomSerialHex();
  const algorithmOid = signatureOidFor(spec.signingKey);
  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [integerFromBytes(Buffer.from([2]))]), // v3
    integerFromBytes(Buffer.from(serialHex, 'hex')),
    signatureAlgorithm(algorithmOid),
    encodeName(spec.issuer),
    seq([encodeTime(spec.notBefore), encodeTime(spec.notAfter)]),
    encodeName(spec.subject),
    fromDer(spec.subjectPublicKeySpki),
    encodeExtensions(spec.extensions),
  ]);
  const tbsDer = toDer(tbs);
  const signature = await signAsync(digestForSignatureOid(algorithmOid), tbsDer, spec.signingKey);
  const der = toDer(seq([fromDer(tbsDer), signatureAlgorithm(algorithmOid), bitString(signature)]));
  return { der, pem: toPem('CERTIFICATE', der), serialHex, notAfter: new Date(Math.floor(spec.notAfter.getTime() / 1000) * 1000) };
}

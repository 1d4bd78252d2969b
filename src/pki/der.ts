// DER and PEM plumbing over node-forge's ASN.1 codec: the byte-level helpers that the
// certificate, CSR and key modules build on. node-forge speaks "binary strings"; Node speaks
// Buffers; this file is the only place that converts between them.

import forge from 'node-forge';

export const asn1 = forge.asn1;
export type Asn1 = forge.asn1.Asn1;

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
} as const;

/**
 * Signature algorithms a CSR may use: the key type each is defined for, and the digest Node's
 * crypto.verify needs. Node verifies with whatever key it is given, so the key type is checked
 * apart (an RSA signature labelled ecdsa-with-SHA256 would verify).
 */
export const SIGNATURE_ALGORITHMS: Readonly<Record<string, { readonly keyType: 'ec' | 'rsa'; readonly digest: string }>> = {
  [OID.ecdsaWithSha256]: { keyType: 'ec', digest: 'sha256' },
  [OID.ecdsaWithSha384]: { keyType: 'ec', digest: 'sha384' },
  [OID.ecdsaWithSha512]: { keyType: 'ec', digest: 'sha512' },
  [OID.sha256WithRsa]: { keyType: 'rsa', digest: 'sha256' },
  [OID.sha384WithRsa]: { keyType: 'rsa', digest: 'sha384' },
  [OID.sha512WithRsa]: { keyType: 'rsa', digest: 'sha512' },
};

export function toDer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

export function fromDer(der: Buffer): Asn1 {
  // strict parsing: trailing garbage or bad lengths are errors, never guesses
  const options = { strict: true, parseAllBytes: true, decodeBitStrings: false };
  // @types/node-forge only knows the old boolean form of the options argument
  return asn1.fromDer(forge.util.createBuffer(der.toString('binary')), options as unknown as boolean);
}

export function seq(children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, children);
}

export function oid(dotted: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
}

export function bitString(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\u0000' + bytes.toString('binary'));
}

export function octetString(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString('binary'));
}

export function integerFromBytes(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, bytes.toString('binary'));
}

/** AlgorithmIdentifier for a signature: ECDSA takes no parameters, RSA takes NULL. */
export function signatureAlgorithm(algorithmOid: string): Asn1 {
  const isRsa = algorithmOid.startsWith('1.2.840.113549.1.1.');
  const children = [oid(algorithmOid)];
  if (isRsa) children.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''));
  return seq(children);
}

// PEM text is forge-free (pem.ts): a sidecar reads PEM without loading node-forge
export { toPem, pemBlocks, splitPemCertificates } from './pem.js';

// A certificate's public key as far as judging what checking with it costs: its algorithm, and
// for RSA its size and exponent, for EC its named curve. Read straight from the DER, without
// OpenSSL: decoding a key can itself be the cost (EC with explicit parameters over a crafted
// prime field: 130 ms to decode a 386-byte key), so a hostile certificate must not be parsed
// again to be judged.

import { elementAt, type Element } from './x509-read.js';

export type KeyFacts =
  | { readonly type: 'rsa'; readonly bits: number; readonly exponentBits: number }
  | { readonly type: 'ec'; readonly curve: 'P-256' | 'P-384' | 'P-521' | 'other' }
  | { readonly type: 'ed25519' | 'ed448' | 'other' };

const OIDS: Readonly<Record<string, string>> = {
  '2a864886f70d010101': 'rsa',
  '2a864886f70d01010a': 'rsa', // RSASSA-PSS
  '2a8648ce3d0201': 'ec',
  '2b6570': 'ed25519',
  '2b6571': 'ed448',
};
const CURVES: Readonly<Record<string, 'P-256' | 'P-384' | 'P-521'>> = {
  '2a8648ce3d030107': 'P-256',
  '2b81040022': 'P-384',
  '2b81040023': 'P-521',
};

/** The size in bits of a DER INTEGER's value (leading zero bytes skipped). */
function integerBits(der: Buffer, integer: Element): number {
  let first = integer.start;
  while (first < integer.end && der[first] === 0) first++;
  return first === integer.end ? 0 : (integer.end - first) * 8 - Math.clz32(der[first] as number) + 24;
}

/** The key of a certificate (DER) as KeyFacts; `other` for anything unreadable. */
export function publicKeyFacts(der: Buffer): KeyFacts {
  const certificate = elementAt(der, 0, der.length);
  const tbs = certificate && elementAt(der, certificate.start, certificate.end);
  if (!tbs) return { type: 'other' };
  // version [0] (optional), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  let at = tbs.start;
  let field = elementAt(der, at, tbs.end);
  if (field?.tag === 0xa0) field = elementAt(der, (at = field.end), tbs.end);
  for (let i = 0; i < 5 && field; i++) field = elementAt(der, (at = field.end), tbs.end);
  const algorithm = field && elementAt(der, field.start, field.end);
  const oid = algorithm && elementAt(der, algorithm.start, algorithm.end);
  const bits = algorithm && field && elementAt(der, algorithm.end, field.end);
  if (!algorithm || oid?.tag !== 0x06 || bits?.tag !== 0x03) return { type: 'other' };
  const type = OIDS[der.subarray(oid.start, oid.end).toString('hex')];
  if (type === 'ec') {
    // namedCurve is an OID; explicit parameters (a SEQUENCE) or none are `other`
    const parameters = elementAt(der, oid.end, algorithm.end);
    const curve = parameters?.tag === 0x06 ? CURVES[der.subarray(parameters.start, parameters.end).toString('hex')] : undefined;
    return { type: 'ec', curve: curve ?? 'other' };
  }
  if (type === 'rsa') {
    // BIT STRING { 0 unused bits, RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } }
    const key = elementAt(der, bits.start + 1, bits.end);
    const modulus = key && elementAt(der, key.start, key.end);
    const exponent = modulus && elementAt(der, modulus.end, key.end);
    if (modulus?.tag !== 0x02 || exponent?.tag !== 0x02) return { type: 'other' };
    return { type: 'rsa', bits: integerBits(der, modulus), exponentBits: integerBits(der, exponent) };
  }
  return { type: type === 'ed25519' || type === 'ed448' ? type : 'other' };
}

// Test helper: a certificate re-dated with validity times Node cannot read ("Bad time value":
// month 13, hour 24, no zone) and re-signed with the real signer key, so its signature, names
// and chain all hold and only its dates are odd. The profile (src/pki/certificate.ts) only
// encodes times from a Date, so it can never make one.

import type { KeyObject } from 'node:crypto';
import { asn1, fromDer, seq, toDer, toPem, bitString, type Asn1 } from '../../src/pki/der.js';
import { pemBlocks } from '../../src/pki/pem.js';
import { digestForSignatureOid, signAsync } from '../../src/pki/keys.js';

/** A raw ASN.1 time: UTCTime ('U', YYMMDDHHMMSSZ) or GeneralizedTime ('G', YYYYMMDDHHMMSSZ), any text. */
export type RawTime = readonly ['U' | 'G', string];

/** A UTCTime whose month is 13: OpenSSL prints it "Bad time value", Date.parse gives NaN. */
export const MONTH_13: RawTime = ['U', '301301000000Z'];

/** `pem` (one certificate) with notBefore and/or notAfter replaced, signed again by `signingKey`. */
export async function redated(pem: string, signingKey: KeyObject, times: { notBefore?: RawTime; notAfter?: RawTime }): Promise<string> {
  const block = pemBlocks(pem).find((b) => b.label === 'CERTIFICATE');
  if (!block) throw new Error('redated: no CERTIFICATE block');
  const cert = fromDer(block.der);
  const [tbs, algorithm] = cert.value as Asn1[];
  const fields = (tbs as Asn1).value as Asn1[];
  const validity = (fields[4] as Asn1).value as Asn1[];
  const time = ([kind, text]: RawTime) => asn1.create(asn1.Class.UNIVERSAL, kind === 'U' ? asn1.Type.UTCTIME : asn1.Type.GENERALIZEDTIME, false, text);
  if (times.notBefore) validity[0] = time(times.notBefore);
  if (times.notAfter) validity[1] = time(times.notAfter);
  const tbsDer = toDer(tbs as Asn1);
  const algorithmOid = asn1.derToOid(((algorithm as Asn1).value as Asn1[])[0]?.value as string);
  const signature = await signAsync(digestForSignatureOid(algorithmOid), tbsDer, signingKey);
  return toPem('CERTIFICATE', toDer(seq([fromDer(tbsDer), algorithm as Asn1, bitString(signature)])));
}

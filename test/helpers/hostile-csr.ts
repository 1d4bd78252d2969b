// Test helper: PKCS#10 requests built byte by byte, for what no well-behaved client sends
// (thousands of SAN entries, a constructed URI name, a signature algorithm that does not match
// the key). Signed for real with the given key, so the CA's proof-of-possession check passes
// and what is tested is the check after it.

import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/** One DER TLV. */
export function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  if (n < 0x80) return Buffer.concat([Buffer.from([tag, n]), content]);
  const length: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) length.unshift(v & 0xff);
  return Buffer.concat([Buffer.from([tag, 0x80 | length.length, ...length]), content]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    bytes.push(...groups);
  }
  return tlv(6, Buffer.from(bytes));
}

/** GeneralName entries: [6] URI, [2] DNS (primitive, context-specific). */
export const uriName = (text: string): Buffer => tlv(0x86, Buffer.from(text, 'latin1'));
export const dnsName = (text: string): Buffer => tlv(0x82, Buffer.from(text, 'latin1'));

export interface HostileCsrOptions {
  /** The GeneralName entries of the subjectAltName extension, DER. */
  readonly sans: readonly Buffer[];
  readonly keys?: { publicKey: KeyObject; privateKey: KeyObject };
  /** The AlgorithmIdentifier OID to write (default: the one matching the key). */
  readonly signatureOid?: string;
  /** The digest actually signed with (default sha256). */
  readonly digest?: string;
}

export function ecKeys(namedCurve = 'P-256'): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve });
}

export function hostileCsr(options: HostileCsrOptions): string {
  const keys = options.keys ?? ecKeys();
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const san = seq(oid('2.5.29.17'), tlv(0x04, seq(...options.sans)));
  const extensionRequest = seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, seq(san)));
  const info = seq(Buffer.from([2, 1, 0]), seq(), spki, tlv(0xa0, extensionRequest));
  const isRsa = keys.privateKey.asymmetricKeyType === 'rsa';
  const algorithmOid = options.signatureOid ?? (isRsa ? '1.2.840.113549.1.1.11' : '1.2.840.10045.4.3.2');
  // RSA AlgorithmIdentifiers carry NULL parameters, ECDSA ones none
  const algorithm = algorithmOid.startsWith('1.2.840.113549.') ? seq(oid(algorithmOid), Buffer.from([5, 0])) : seq(oid(algorithmOid));
  const signature = sign(options.digest ?? 'sha256', info, keys.privateKey);
  const der = seq(info, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

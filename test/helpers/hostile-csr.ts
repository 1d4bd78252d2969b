// Test helper: PKCS#10 requests built byte by byte, for what no well-behaved client sends
// (thousands of SAN entries, a constructed URI name, a signature algorithm that does not match
// the key). Signed for real with the given key, so the CA's proof-of-possession check passes
// and what is tested is the check after it.

import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

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
  /** An RSA key's AlgorithmIdentifier parameters, DER, in place of NULL (RFC 3279). */
  readonly rsaKeyParameters?: Buffer;
  /** The signature's whole AlgorithmIdentifier, DER, as written (an empty SEQUENCE, say). */
  readonly algorithmDer?: Buffer;
}

export function ecKeys(namedCurve = 'P-256'): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve });
}

export function hostileCsr(options: HostileCsrOptions): string {
  const keys = options.keys ?? ecKeys();
  let spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  if (options.rsaKeyParameters) {
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING }: keep the BIT STRING, swap the NULL
    const afterAlgorithm = 4 + 2 + (spki[5] as number);
    spki = seq(seq(oid('1.2.840.113549.1.1.1'), options.rsaKeyParameters), spki.subarray(afterAlgorithm));
  }
  const san = seq(oid('2.5.29.17'), tlv(0x04, seq(...options.sans)));
  const extensionRequest = seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, seq(san)));
  const info = seq(Buffer.from([2, 1, 0]), seq(), spki, tlv(0xa0, extensionRequest));
  const isRsa = keys.privateKey.asymmetricKeyType === 'rsa';
  const algorithmOid = options.signatureOid ?? (isRsa ? '1.2.840.113549.1.1.11' : '1.2.840.10045.4.3.2');
  // RSA AlgorithmIdentifiers carry NULL parameters, ECDSA ones none
  const algorithm = options.algorithmDer ?? (algorithmOid.startsWith('1.2.840.113549.') ? seq(oid(algorithmOid), Buffer.from([5, 0])) : seq(oid(algorithmOid)));
  const signature = sign(options.digest ?? 'sha256', info, keys.privateKey);
  const der = seq(info, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

// Keys nobody holds, with CSRs that still "prove possession" of them: the signature is forged
// from the public numbers alone. For the CA's key checks (test/ca/forged-keys.test.ts).

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const toBytes = (x: bigint, length?: number): Buffer => {
  const hex = x.toString(16);
  const bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  return length === undefined ? bytes : Buffer.concat([Buffer.alloc(length - bytes.length), bytes]);
};
const fromBytes = (bytes: Buffer): bigint => BigInt(`0x${bytes.toString('hex') || '0'}`);
const modPow = (base: bigint, exponent: bigint, modulus: bigint): bigint => {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
};
const derInteger = (x: bigint): Buffer => {
  const bytes = toBytes(x);
  return tlv(0x02, (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
};

function csrPem(spki: Buffer, uri: string, algorithm: Buffer, signInfo: (info: Buffer) => Buffer): string {
  const san = seq(oid('2.5.29.17'), tlv(0x04, seq(uriName(uri))));
  const info = seq(Buffer.from([2, 1, 0]), seq(), spki, tlv(0xa0, seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, seq(san)))));
  const der = seq(info, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signInfo(info)])));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

/**
 * A P-256 "key" that is the point at infinity (one zero byte) and an ECDSA signature that
 * verifies against it: with Q = O, R = u1·G, so any k gives r = x(k·G), s = e/k.
 */
export function infinityPointCsr(uri: string): string {
  const spki = seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), tlv(0x03, Buffer.from([0, 0])));
  return csrPem(spki, uri, seq(oid('1.2.840.10045.4.3.2')), (info) => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const k = fromBytes(Buffer.from(String(jwk.d), 'base64url'));
    const r = fromBytes(Buffer.from(String(jwk.x), 'base64url')) % P256_ORDER;
    const e = fromBytes(createHash('sha256').update(info).digest()) % P256_ORDER;
    const s = (e * modPow(k, P256_ORDER - 2n, P256_ORDER)) % P256_ORDER;
    return seq(derInteger(r), derInteger(s));
  });
}

/**
 * An RSA key of the given numbers and a sha256WithRSAEncryption signature made by `raise`
 * (the padded digest, an integer, to the private power: for e = 1 that is the digest itself).
 */
export function rsaNumbersCsr(uri: string, modulus: bigint, exponent: bigint, raise: (padded: bigint) => bigint): string {
  const spki = seq(seq(oid('1.2.840.113549.1.1.1'), Buffer.from([5, 0])), tlv(0x03, Buffer.concat([Buffer.from([0]), seq(derInteger(modulus), derInteger(exponent))])));
  const size = toBytes(modulus).length;
  return csrPem(spki, uri, seq(oid('1.2.840.113549.1.1.11'), Buffer.from([5, 0])), (info) => {
    const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(info).digest()]);
    const padded = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(size - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo]);
    return toBytes(raise(fromBytes(padded)), size);
  });
}

// Key pairs and what the CA will accept of a public key. Keys come from Node's native,
// asynchronous generator (libuv thread pool), never from a JavaScript loop on the event loop.

import { generateKeyPair, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyPairPem {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** ECDSA P-256: what modern meshes use; small certificates and cheap handshakes. */
export async function generateWorkloadKey(): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

export async function generateRsaKey(bits: number): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

export interface KeyDescription {
  readonly type: 'ec' | 'rsa' | 'other';
  /** RSA modulus bits, or EC curve size in bits. */
  readonly bits: number;
  readonly curve?: string;
}

export function describePublicKey(key: KeyObject): KeyDescription {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return { type: 'rsa', bits: details.modulusLength ?? 0 };
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? '';
    const bits = curve === 'prime256v1' ? 256 : curve === 'secp384r1' ? 384 : curve === 'secp521r1' ? 521 : 0;
    return { type: 'ec', bits, curve };
  }
  return { type: 'other', bits: 0 };
}

/**
 * The largest RSA key issued for. Whoever holds an SVID chooses the key the CA checks each renewal
 * proof with (twice per request: at its head and after its body), and the cost grows with the
 * square of the size: 4.1 ms a check at 16,384 bits (a review), ~1 ms at 8,192 against 0.1 ms
 * for P-256. 8,192 is twice what public CAs take (4,096).
 */
export const MAX_RSA_BITS = 8192;

/**
 * Why a public key is too weak or of a kind we do not issue for, or undefined if it is fine:
 * ECDSA on the three NIST curves TLS signs with (P-256, P-384, P-521), RSA from 2048 to 8192 bits.
 */
export function weakKeyReason(key: KeyObject): string | undefined {
  const description = describePublicKey(key);
  if (description.type === 'rsa' && description.bits < 2048) return `RSA keys must have at least 2048 bits, this one has ${description.bits}`;
  if (description.type === 'rsa' && description.bits > MAX_RSA_BITS) return `RSA keys must have at most ${MAX_RSA_BITS} bits, this one has ${description.bits}`;
  if (description.type === 'rsa') return rsaExponentProblem(key);
  if (description.type === 'ec' && description.bits === 0) return `EC curve ${description.curve ?? 'unknown'} is not supported (use P-256, P-384 or P-521)`;
  if (description.type === 'other') return `key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (use ECDSA on P-256, P-384 or P-521, or RSA with 2048 bits or more)`;
  return undefined;
}

/**
 * Why OpenSSL at security level 2 (112 bits: identity/tls-contexts.ts TLS_POLICY) would refuse a
 * certificate's key in a TLS chain, or undefined: RSA, RSA-PSS and DSA under 2048 bits, an
 * EC curve under 224 bits (a curve's size read from its name: prime256v1, secp384r1,
 * brainpoolP512r1, sect163k1). Looser than weakKeyReason, which is what our CA issues for.
 */
export function tlsKeyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss' || type === 'dsa') {
    const bits = details.modulusLength ?? 0;
    return bits < 2048 ? `a ${bits}-bit ${type.toUpperCase()} key` : undefined;
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    const bits = Math.max(0, ...(curve.match(/\d+/g) ?? []).map(Number));
    return bits < 224 ? `a key on the ${bits > 0 ? `${bits}-bit ` : ''}curve ${curve}` : undefined;
  }
  return undefined;
}

/** The largest public exponent taken (CA/Browser Forum Baseline Requirements 6.1.6). */
const MAX_RSA_EXPONENT = 2n ** 256n - 1n;

/**
 * An RSA key's exponent, which OpenSSL decodes without judging: with an exponent of 1 a
 * signature is its own padded digest, so anyone "proves possession" of a key nobody holds and
 * anyone can sign as its certificate. It must be odd, from 65537 to 2^256-1 (Baseline
 * Requirements 6.1.6). An even modulus needs no check here: OpenSSL's verification cannot use
 * one, so such a CSR never proves possession.
 */
function rsaExponentProblem(key: KeyObject): string | undefined {
  const exponent = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (exponent % 2n === 0n || exponent < 65537n || exponent > MAX_RSA_EXPONENT) {
    const shown = exponent > MAX_RSA_EXPONENT ? `a ${exponent.toString(2).length}-bit number` : String(exponent);
    return `the RSA public exponent must be odd and from 65537 to 2^256-1, this one is ${shown}`;
  }
  return undefined;
}

export function publicKeyFromSpki(spkiDer: Buffer): KeyObject {
  return createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
}

export function spkiDerOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

const signatureOids = new WeakMap<KeyObject, string>();

/** The signature algorithm a private key of this kind signs certificates and CSRs with. */
export function signatureOidFor(key: KeyObject): string {
  let algorithm = signatureOids.get(key);
  if (algorithm === undefined) {
    algorithm = signatureOidOf(key);
    signatureOids.set(key, algorithm);
  }
  return algorithm;
}

function signatureOidOf(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'secp384r1' ? '1.2.840.10045.4.3.3' : '1.2.840.10045.4.3.2';
  }
  if (key.asymmetricKeyType === 'rsa') return '1.2.840.113549.1.1.11';
  throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`);
}

export function digestForSignatureOid(algorithmOid: string): string {
  return algorithmOid === '1.2.840.10045.4.3.3' || algorithmOid === '1.2.840.113549.1.1.12' ? 'sha384' : 'sha256';
}

/** Signs off the event loop (Node's native crypto, in the thread pool). */
export function signAsync(digest: string, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(digest, data, key, (err, signature) => (err ? reject(err) : resolve(signature)));
  });
}

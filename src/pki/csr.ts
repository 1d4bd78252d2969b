// PKCS#10 certification requests, the CA's side: it parses one and checks its proof of
// possession. node-forge's own CSR code only knows RSA, so this walks the ASN.1 itself and leaves
// signatures to Node's native crypto. The sidecar builds its CSR without forge (csr-request.ts).

import { verify, type KeyObject } from 'node:crypto';
import { asn1, fromDer, pemBlocks, toDer, type Asn1, OID, SIGNATURE_ALGORITHMS } from './der.js';
import { publicKeyFromSpki, spkiDerOf, weakKeyReason } from './keys.js';
import { clip } from '../clip.js';

/** An OID a requester made up is quoted this far (dotted numbers: a real one is under 60 characters). */
const OID_QUOTE_LIMIT = 128;

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /**
   * The key as Node decoded it, encoded afresh: what a certificate for it carries. Never the
   * requester's own bytes: OpenSSL takes an RSA key whose algorithm parameters (NULL, RFC 3279)
   * are any value at all, and the CA signed 40 KB of the requester's choosing into a leaf.
   */
  readonly spki: Buffer;
  /** SAN entries the requester asked for (at most MAX_SAN_ENTRIES in all): the URIs, and the kind of each other one (DNS, IP, ...). */
  readonly uris: readonly string[];
  readonly otherNames: readonly string[];
  readonly signatureOid: string;
}

/** Why a CSR is malformed; the CA maps it to 400 bad_csr. */
export class CsrError extends Error {}

/**
 * The CSR's key is of a kind or size the CA does not issue for (weakKeyReason); the CA maps it
 * to 400 weak_key. Judged before the signature algorithm: an Ed25519, Ed448, RSA-PSS or DSA key
 * signs with an algorithm the CA does not take either, and "signature algorithm 1.3.101.112 is
 * not accepted" told the requester nothing of the keys it does.
 */
export class WeakKeyError extends Error {}

// the sidecar's side, forge-free: csr-request.ts
export { buildCsr } from './csr-request.js';

function children(node: Asn1 | undefined, what: string): Asn1[] {
  if (!node || !Array.isArray(node.value)) throw new CsrError(`${what} is not a constructed ASN.1 value`);
  return node.value as Asn1[];
}

/**
 * SAN entries read from one request: an SVID asks for one, so more than this is refused before
 * anything is made of them (thousands of empty names fit in a 64 KiB body).
 */
export const MAX_SAN_ENTRIES = 16;

/** GeneralName kinds by context tag (RFC 5280 4.2.1.6), for messages. */
const SAN_KINDS: Readonly<Record<number, string>> = { 0: 'otherName', 1: 'email', 2: 'DNS', 3: 'x400Address', 4: 'directoryName', 5: 'ediPartyName', 6: 'URI', 7: 'IP', 8: 'registeredID' };

function sanKind(name: Asn1): string {
  return name.tagClass === asn1.Class.CONTEXT_SPECIFIC ? (SAN_KINDS[name.type] ?? `tag ${name.type}`) : `universal tag ${name.type}`;
}

function readSans(extensionsAttribute: Asn1, uris: string[], otherNames: string[]): void {
  const valueSet = children(children(extensionsAttribute, 'extension request')[1], 'extension request values');
  for (const extensions of valueSet) {
    for (const extension of children(extensions, 'extensions')) {
      const parts = children(extension, 'extension');
      const extensionOid = asn1.derToOid(String(parts[0]?.value ?? ''));
      if (extensionOid !== OID.subjectAltName) continue;
      const octets = parts[parts.length - 1] as Asn1;
      const names = children(asn1.fromDer(String(octets.value)), 'subjectAltName');
      if (uris.length + otherNames.length + names.length > MAX_SAN_ENTRIES) {
        throw new CsrError(`the certificate request asks for ${uris.length + otherNames.length + names.length} subject alternative names; at most ${MAX_SAN_ENTRIES} are read (an SVID has one)`);
      }
      for (const name of names) {
        const isUri = name.tagClass === asn1.Class.CONTEXT_SPECIFIC && name.type === 6;
        // a URI is an IA5String: primitive, never a constructed value (forge gives an array)
        if (isUri && (name.constructed || typeof name.value !== 'string')) throw new CsrError('a URI name in the certificate request is not a primitive IA5String');
        if (isUri) uris.push(name.value as string);
        else otherNames.push(sanKind(name));
      }
    }
  }
}

/**
 * An EC key must name its curve (RFC 5480 2.1.1) and be a point on it, encoded compressed or
 * uncompressed. Checked on the DER, before Node decodes the key: OpenSSL decodes the point at
 * infinity (one zero byte) without a word, every ECDSA signature of it can be forged without a
 * private key, and reading the decoded key's details (asymmetricKeyDetails) then aborts the
 * whole process in a native assertion (Node 20), which no try/catch stops.
 */
function ecPointCheck(spkiNode: Asn1): void {
  const [algorithm, key] = children(spkiNode, 'subjectPublicKeyInfo');
  const [keyOid, parameters] = children(algorithm, 'public key algorithm');
  if (asn1.derToOid(String(keyOid?.value ?? '')) !== OID.ecPublicKey) return;
  if (parameters?.tagClass !== asn1.Class.UNIVERSAL || parameters.type !== asn1.Type.OID) throw new CsrError('the EC public key in the certificate request must name its curve (RFC 5480: no explicit or implicit curve parameters)');
  // a BIT STRING's value: the unused-bits byte, then the encoded point
  const bits = typeof key?.value === 'string' ? key.value : '';
  const form = bits.charCodeAt(1);
  const coordinates = bits.length - 2;
  const encodedAsPoint = bits.charCodeAt(0) === 0 && (form === 0x04 ? coordinates > 0 && coordinates % 2 === 0 : (form === 0x02 || form === 0x03) && coordinates > 0);
  if (!encodedAsPoint) throw new CsrError('the EC public key in the certificate request is not a point on its curve (the point at infinity, or not encoded as 04|X|Y or 02/03|X)');
}

/**
 * Parses a PEM CSR, judges its key (WeakKeyError) and verifies its signature (proof of
 * possession of the private key).
 */
export async function parseAndVerifyCsr(pem: string): Promise<ParsedCsr> {
  try {
    return await parseAndVerify(pem);
  } catch (err) {
    if (err instanceof CsrError || err instanceof WeakKeyError) throw err;
    // forge's decoder throws plain errors on truncated or mis-tagged input, and a part missing
    // where one is read a TypeError: neither is quoted to the requester (they name our code)
    // (kept as the cause: the CA's audit line says it, so a fault of ours is not taken for garbage)
    throw new CsrError('the certificate request is malformed: it is not a PKCS #10 request (RFC 2986)', { cause: err });
  }
}

async function parseAndVerify(pem: string): Promise<ParsedCsr> {
  const blocks = pemBlocks(pem);
  const block = blocks.find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (!block) throw new CsrError('the text holds no PEM "CERTIFICATE REQUEST" block');
  if (blocks.length !== 1) throw new CsrError('send exactly one PEM block, the certificate request');
  let top: Asn1;
  try {
    top = fromDer(block.der);
  } catch (err) {
    // the decoder's reason names its own limits ("Only 8, 16, 24, or 32 bits supported")
    throw new CsrError('the certificate request is not valid DER', { cause: err });
  }
  const [info, algorithm, signatureBits] = children(top, 'certificate request');
  const infoParts = children(info, 'certificationRequestInfo');
  const spkiNode = infoParts[2];
  if (!spkiNode || !algorithm || !signatureBits) throw new CsrError('the certificate request is missing parts');
  ecPointCheck(spkiNode);
  const spki = toDer(spkiNode);
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromSpki(spki);
  } catch {
    throw new CsrError('the public key in the certificate request cannot be read');
  }
  const weak = weakKeyReason(publicKey);
  if (weak !== undefined) throw new WeakKeyError(weak);
  const signatureOid = asn1.derToOid(String(children(algorithm, 'signature algorithm')[0]?.value ?? ''));
  const signer = Object.hasOwn(SIGNATURE_ALGORITHMS, signatureOid) ? SIGNATURE_ALGORITHMS[signatureOid] : undefined;
  if (!signer) throw new CsrError(`signature algorithm ${clip(signatureOid, OID_QUOTE_LIMIT)} is not accepted (use ECDSA or RSA with SHA-256 or stronger)`);
  if (publicKey.asymmetricKeyType !== signer.keyType) {
    throw new CsrError(`signature algorithm ${signatureOid} is for ${signer.keyType === 'ec' ? 'ECDSA' : 'RSA'} keys, but the certificate request's key is ${publicKey.asymmetricKeyType ?? 'of an unknown type'}`);
  }
  const signature = Buffer.from(String(signatureBits.value), 'binary').subarray(1);
  const signedBytes = toDer(info as Asn1);
  const valid = await new Promise<boolean>((resolve) => {
    verify(signer.digest, signedBytes, publicKey, signature, (err, ok) => resolve(!err && ok));
  });
  if (!valid) throw new CsrError('the certificate request signature does not verify (no proof of possession of the key)');

  const uris: string[] = [];
  const otherNames: string[] = [];
  const attributes = infoParts[3];
  if (attributes && attributes.tagClass === asn1.Class.CONTEXT_SPECIFIC) {
    for (const attribute of children(attributes, 'attributes')) {
      const attributeOid = asn1.derToOid(String(children(attribute, 'attribute')[0]?.value ?? ''));
      if (attributeOid === OID.extensionRequest) readSans(attribute, uris, otherNames);
    }
  }
  return { publicKey, spki: spkiDerOf(publicKey), uris, otherNames, signatureOid };
}

// The sidecar's PKCS#10 certification request for its SPIFFE ID, encoded here with a few lines
// of DER instead of node-forge's ASN.1 codec: forge (~1.5 MB of live heap, 42 modules) is loaded by
// the CA only, which issues certificates and parses CSRs (csr.ts), never by a sidecar. The
// structure is fixed (RFC 2986: version 0, an empty subject, the key, one extensionRequest
// attribute holding one URI SAN); signatures come from Node's native crypto.

import type { KeyObject } from 'node:crypto';
import { digestForSignatureOid, signAsync, signatureOidFor, spkiDerOf } from './keys.js';
import { toPem } from './pem.js';

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

/** One DER value: tag, definite length (short or long form), contents. */
function tlv(tag: number, contents: Buffer): Buffer {
  const n = contents.length;
  if (n < 0x80) return Buffer.concat([Buffer.from([tag, n]), contents]);
  const length: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) length.unshift(v & 0xff);
  return Buffer.concat([Buffer.from([tag, 0x80 | length.length, ...length]), contents]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));

function objectId(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** AlgorithmIdentifier for a signature: ECDSA takes no parameters, RSA takes NULL. */
function signatureAlgorithm(algorithmOid: string): Buffer {
  return algorithmOid.startsWith('1.2.840.113549.1.1.') ? sequence(objectId(algorithmOid), Buffer.from([0x05, 0x00])) : sequence(objectId(algorithmOid));
}

/** The CertificationRequestInfo DER: what the workload key signs. */
export function csrInfoDer(publicKey: KeyObject, spiffeId: string): Buffer {
  const san = sequence(tlv(0x86, Buffer.from(spiffeId, 'latin1'))); // GeneralNames: one [6] uniformResourceIdentifier
  const extensions = sequence(sequence(objectId(OID_SUBJECT_ALT_NAME), tlv(0x04, san)));
  const extensionRequest = sequence(objectId(OID_EXTENSION_REQUEST), tlv(0x31, extensions));
  return sequence(
    Buffer.from([0x02, 0x01, 0x00]), // version 0
    sequence(), // empty subject: the identity is the SAN
    spkiDerOf(publicKey),
    tlv(0xa0, extensionRequest), // [0] attributes
  );
}

/** A CSR asking for exactly one URI SAN, signed with the workload's private key. */
export async function buildCsr(privateKey: KeyObject, publicKey: KeyObject, spiffeId: string): Promise<string> {
  const info = csrInfoDer(publicKey, spiffeId);
  const algorithmOid = signatureOidFor(privateKey);
  const signature = await signAsync(digestForSignatureOid(algorithmOid), info, privateKey);
  return toPem('CERTIFICATE REQUEST', sequence(info, signatureAlgorithm(algorithmOid), tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))));
}

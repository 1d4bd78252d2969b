// Test helper: certificates a peer makes itself, beside the genuine ones our CA issues — the
// kind a caller holding a valid leaf may present to make a chain search costly or misleading
// (certificate authorities that sign one another, namesakes of a real issuer). Built with the
// project's own certificate writer (src/pki/certificate.ts), signed by keys made here.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { buildCertificate, keyIdentifier } from '../../src/pki/certificate.js';
import { octetString } from '../../src/pki/der.js';
import { generateWorkloadKey, spkiDerOf } from '../../src/pki/keys.js';
import type { DistinguishedName } from '../../src/pki/certificate.js';

const DAY_MS = 86_400_000;

/** A key of the peer's own: what signs what it makes, and its public key. */
export interface MadeKey {
  readonly signingKey: KeyObject;
  readonly spki: Buffer;
}

export async function madeKey(): Promise<MadeKey> {
  const pair = await generateWorkloadKey();
  return { signingKey: createPrivateKey(pair.privateKeyPem), spki: spkiDerOf(createPublicKey(pair.publicKeyPem)) };
}

export interface MadeAuthority {
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
  /** The public key it certifies. */
  readonly spki: Buffer;
  readonly signingKey: KeyObject;
  /** Default: from a day ago to a day ahead. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** A subject key identifier to carry (a real issuer's, to pass for it); none by default. */
  readonly keyIdOf?: Buffer;
}

/** A certificate authority (basicConstraints CA, keyCertSign) as described, in PEM. */
export async function madeAuthority(spec: MadeAuthority): Promise<string> {
  const built = await buildCertificate({
    subject: spec.subject,
    issuer: spec.issuer,
    subjectPublicKeySpki: spec.spki,
    notBefore: spec.notBefore ?? new Date(Date.now() - DAY_MS),
    notAfter: spec.notAfter ?? new Date(Date.now() + DAY_MS),
    signingKey: spec.signingKey,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, critical: true },
      ...(spec.keyIdOf ? [{ name: 'subjectKeyIdentifier', id: '2.5.29.14', value: octetString(keyIdentifier(spec.keyIdOf)) }] : []),
    ],
  });
  return built.pem;
}

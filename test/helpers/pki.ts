// Test PKI: a throwaway root + issuer per trust domain, minting real SVIDs through the
// production profile (src/ca/x509-profile.ts), plus deliberately malformed leaves that the
// profile refuses to make (no URI SAN, two URI SANs) for negative tests.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { issueIssuerCertificate, issueLeafCertificate, issueRootCertificate, issuerName, rootName, type Signer } from '../../src/ca/x509-profile.js';
import { buildCertificate, keyIdentifier } from '../../src/pki/certificate.js';
import { octetString } from '../../src/pki/der.js';
import { generateWorkloadKey, spkiDerOf, type KeyPairPem } from '../../src/pki/keys.js';
import type { SvidMaterial } from '../../src/identity/svid.js';

export interface IssuedLeaf extends SvidMaterial {
  readonly serialHex: string;
  readonly certificatePem: string;
}

export interface LeafOptions {
  readonly lifetimeMs?: number;
  readonly serverNames?: readonly string[];
  /** Reuse a key (e.g. to test key mismatch, or renewal without a new key). */
  readonly key?: KeyPairPem;
  /** Issue as if at this time (an expired leaf: a past `now` and a short lifetime). */
  readonly now?: Date;
  /** issueWithUris: basicConstraints cA (a signing certificate presented as a peer). */
  readonly ca?: boolean;
  /** issueWithUris: keyUsage bits in place of digitalSignature alone (node-forge's names: keyCertSign, cRLSign...). */
  readonly keyUsage?: Readonly<Record<string, boolean>>;
}

export interface TestPki {
  readonly trustDomain: string;
  readonly rootPem: string;
  readonly issuerPem: string;
  /** The roots, what workloads trust. */
  readonly bundlePem: string;
  readonly root: Signer;
  readonly issuer: Signer;
  readonly issuerNotAfter: Date;
  /** A well-formed SVID: chain = leaf + issuer. */
  issue(spiffeId: string, options?: LeafOptions): Promise<IssuedLeaf>;
  /** A leaf with exactly these URI SANs (zero, two, ...), otherwise profile-like (or a signing certificate: options.ca, options.keyUsage). */
  issueWithUris(uris: readonly string[], options?: LeafOptions): Promise<IssuedLeaf>;
}

async function signerFrom(key: KeyPairPem, name: Signer['name']): Promise<Signer> {
  const privateKey: KeyObject = createPrivateKey(key.privateKeyPem);
  return { key: privateKey, name, spki: spkiDerOf(createPublicKey(key.publicKeyPem)) };
}

export async function makePki(trustDomain = 'mesh.test'): Promise<TestPki> {
  const rootKey = await generateWorkloadKey();
  const root = await signerFrom(rootKey, rootName(trustDomain));
  const rootCert = await issueRootCertificate(root.key, root.spki, trustDomain);
  const rootNotAfter = new Date(Date.now() + 3650 * 86_400_000);

  const issuerKey = await generateWorkloadKey();
  const issuer = await signerFrom(issuerKey, issuerName(trustDomain));
  const issuerCert = await issueIssuerCertificate(root, rootNotAfter, issuer.spki, trustDomain);
  const issuerNotAfter = new Date(Date.now() + 365 * 86_400_000);

  const material = (key: KeyPairPem, pem: string, serialHex: string): IssuedLeaf => ({
    privateKeyPem: key.privateKeyPem,
    chainPem: pem + issuerCert.pem,
    bundlePem: rootCert.pem,
    serialHex,
    certificatePem: pem,
  });

  return {
    trustDomain,
    rootPem: rootCert.pem,
    issuerPem: issuerCert.pem,
    bundlePem: rootCert.pem,
    root,
    issuer,
    issuerNotAfter,
    async issue(spiffeId, options = {}) {
      const key = options.key ?? (await generateWorkloadKey());
      const leaf = await issueLeafCertificate(
        issuer,
        issuerNotAfter,
        {
          spiffeId,
          subjectPublicKeySpki: spkiDerOf(createPublicKey(key.publicKeyPem)),
          lifetimeMs: options.lifetimeMs ?? 3_600_000,
          ...(options.serverNames ? { serverNames: options.serverNames } : {}),
        },
        options.now ?? new Date(),
      );
      return material(key, leaf.pem, leaf.serialHex);
    },
    async issueWithUris(uris, options = {}) {
      const key = options.key ?? (await generateWorkloadKey());
      const spki = spkiDerOf(createPublicKey(key.publicKeyPem));
      const now = options.now ?? new Date();
      const extensions: Array<Record<string, unknown>> = [
        { name: 'basicConstraints', cA: options.ca ?? false, critical: true },
        { name: 'keyUsage', ...(options.keyUsage ?? { digitalSignature: true }), critical: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectKeyIdentifier', id: '2.5.29.14', value: octetString(keyIdentifier(spki)) },
        { name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(issuer.spki).toString('binary') },
      ];
      if (uris.length > 0) extensions.push({ name: 'subjectAltName', altNames: uris.map((value) => ({ type: 6, value })) });
      const leaf = await buildCertificate({
        subject: { organization: trustDomain },
        issuer: issuer.name,
        subjectPublicKeySpki: spki,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + (options.lifetimeMs ?? 3_600_000)),
        signingKey: issuer.key,
        extensions,
      });
      return material(key, leaf.pem, leaf.serialHex);
    },
  };
}

// Test PKI: a throwaway root + issuer per trust domain, minting real SVIDs through the
// production profile (src/ca/x509-profile.ts), plus deliberately malformed leaves that the
// profile refuses to make (no URI SAN, two URI SANs) for negative tests.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ISSUER_LIFETIME_MS, ROOT_LIFETIME_MS, issueIssuerCertificate, issueLeafCertificate, issueRootCertificate, issuerName, rootName, type Signer } from '../../src/ca/x509-profile.js';
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
  /** issueWithUris: keyUsage bits in place of digitalSignature alone (node-forge's names: keyCertSign, cRLSign...); null: no keyUsage extension. */
  readonly keyUsage?: Readonly<Record<string, boolean>> | null;
  /** issueWithUris: extKeyUsage bits in place of serverAuth and clientAuth (node-forge's names). */
  readonly extKeyUsage?: Readonly<Record<string, boolean>>;
  /** issueWithUris: also a critical extension no verifier knows (OID 1.3.6.1.4.1.55555.1). */
  readonly unknownCriticalExtension?: boolean;
}

/** A leaf under an intermediate of its own (issueUnderShortIssuer), with that intermediate. */
export interface LeafUnderIssuer extends IssuedLeaf {
  readonly issuerPem: string;
  /** The intermediate's notAfter (ms since the epoch, a whole second). */
  readonly issuerNotAfterMs: number;
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
  /**
   * A leaf (1 h, or options.lifetimeMs) under a new intermediate of the root that ends in
   * `issuerLifetimeMs` (started a minute ago): a chain whose issuer ends before its leaf, as
   * our CA never makes one (it clamps a leaf to its issuer) but another issuer may. A negative
   * `issuerLifetimeMs` gives an issuer already expired; `issuerStartsInMs` (-60 s) one that starts
   * later than now when positive (not valid yet).
   */
  issueUnderShortIssuer(spiffeId: string, issuerLifetimeMs: number, options?: LeafOptions, issuerStartsInMs?: number): Promise<LeafUnderIssuer>;
}

/** Far enough ahead that nothing is clamped to it: the helpers that make chains our CA would not. */
const UNCLAMPED = () => new Date(Date.now() + 10 * ISSUER_LIFETIME_MS);

async function signerFrom(key: KeyPairPem, name: Signer['name']): Promise<Signer> {
  const privateKey: KeyObject = createPrivateKey(key.privateKeyPem);
  return { key: privateKey, name, spki: spkiDerOf(createPublicKey(key.publicKeyPem)) };
}

/** `rootLifetimeMs`: a root that ends that long from now (the issuer and leaves are not clamped to it). */
export async function makePki(trustDomain = 'mesh.test', rootLifetimeMs?: number): Promise<TestPki> {
  const rootKey = await generateWorkloadKey();
  const root = await signerFrom(rootKey, rootName(trustDomain));
  // a root's lifetime is fixed: issued as if that much less than it ago
  const rootCert = await issueRootCertificate(root.key, root.spki, trustDomain, rootLifetimeMs === undefined ? undefined : new Date(Date.now() - ROOT_LIFETIME_MS + rootLifetimeMs));
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
        ...(options.keyUsage === null ? [] : [{ name: 'keyUsage', ...(options.keyUsage ?? { digitalSignature: true }), critical: true }]),
        { name: 'extKeyUsage', ...(options.extKeyUsage ?? { serverAuth: true, clientAuth: true }) },
        { name: 'subjectKeyIdentifier', id: '2.5.29.14', value: octetString(keyIdentifier(spki)) },
        { name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(issuer.spki).toString('binary') },
      ];
      if (uris.length > 0) extensions.push({ name: 'subjectAltName', altNames: uris.map((value) => ({ type: 6, value })) });
      if (options.unknownCriticalExtension) extensions.push({ id: '1.3.6.1.4.1.55555.1', critical: true, value: octetString(Buffer.from('meshcar-test')) });
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
    async issueUnderShortIssuer(spiffeId, issuerLifetimeMs, options = {}, issuerStartsInMs = -60_000) {
      const issuerKey = await generateWorkloadKey();
      const spki = spkiDerOf(createPublicKey(issuerKey.publicKeyPem));
      const started = new Date(Date.now() + issuerStartsInMs);
      const shortIssuerCert = await issueIssuerCertificate(root, UNCLAMPED(), spki, trustDomain, started, issuerLifetimeMs - issuerStartsInMs);
      const shortIssuer = await signerFrom(issuerKey, issuerName(trustDomain));
      const key = options.key ?? (await generateWorkloadKey());
      const leaf = await issueLeafCertificate(shortIssuer, UNCLAMPED(), { spiffeId, subjectPublicKeySpki: spkiDerOf(createPublicKey(key.publicKeyPem)), lifetimeMs: options.lifetimeMs ?? 3_600_000 });
      return {
        privateKeyPem: key.privateKeyPem,
        chainPem: leaf.pem + shortIssuerCert.pem,
        bundlePem: rootCert.pem,
        serialHex: leaf.serialHex,
        certificatePem: leaf.pem,
        issuerPem: shortIssuerCert.pem,
        issuerNotAfterMs: shortIssuerCert.notAfter.getTime(),
      };
    },
  };
}

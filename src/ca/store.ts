// The CA's files on disk: root and issuer keys and certificates, and the trust bundle.
// Keys are written 0600 in a 0700 folder; an existing CA is never overwritten without --force.

import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { splitPemCertificates } from '../pki/der.js';
import { issueIssuerCertificate, issueRootCertificate, issuerName, rootName, type Signer } from './x509-profile.js';

export const CA_FILES = {
  rootCert: 'root.crt',
  rootKey: 'root.key',
  issuerCert: 'issuer.crt',
  issuerKey: 'issuer.key',
  bundle: 'bundle.pem',
} as const;

export interface CaMaterial {
  readonly dir: string;
  readonly trustDomain: string;
  readonly issuer: Signer;
  readonly issuerCert: X509Certificate;
  readonly issuerPem: string;
  /** Every root this CA's workloads trust (PEM); may hold more than one during root rotation. */
  readonly bundlePem: string;
  readonly roots: readonly X509Certificate[];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

export async function initCaDirectory(dir: string, trustDomain: string, options: { force: boolean }): Promise<void> {
  if (!options.force) {
    for (const file of Object.values(CA_FILES)) {
      if (await exists(join(dir, file))) {
        throw new MeshcarError('ca_exists', `${join(dir, file)} already exists: ${dir} holds a CA; pass --force to replace it (every issued certificate stops being trusted)`);
      }
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const [rootKeys, issuerKeys] = await Promise.all([generateWorkloadKey(), generateWorkloadKey()]);
  const rootKey = createPrivateKey(rootKeys.privateKeyPem);
  const issuerKey = createPrivateKey(issuerKeys.privateKeyPem);
  const root = await issueRootCertificate(rootKey, spkiOf(rootKey), trustDomain);
  const rootNotAfter = new Date(new X509Certificate(root.pem).validTo);
  const issuer = await issueIssuerCertificate({ key: rootKey, name: rootName(trustDomain), spki: spkiOf(rootKey) }, rootNotAfter, spkiOf(issuerKey), trustDomain);
  // keys first: a crash half-way leaves no certificate without its key
  await writeFileAtomic(join(dir, CA_FILES.rootKey), rootKeys.privateKeyPem, 0o600);
  await writeFileAtomic(join(dir, CA_FILES.issuerKey), issuerKeys.privateKeyPem, 0o600);
  await writeFileAtomic(join(dir, CA_FILES.rootCert), root.pem, 0o644);
  await writeFileAtomic(join(dir, CA_FILES.issuerCert), issuer.pem, 0o644);
  await writeFileAtomic(join(dir, CA_FILES.bundle), root.pem, 0o644);
}

async function readCaFile(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new MeshcarError('ca_missing', `${join(dir, file)} ${reason}: run "meshcar ca init --dir ${dir} --trust-domain TD" first`);
  }
}

/** Loads and cross-checks the issuer and bundle (the root key is not needed to serve). */
export async function loadCaMaterial(dir: string, expectedTrustDomain?: string): Promise<CaMaterial> {
  const [issuerPem, issuerKeyPem, bundlePem] = await Promise.all([
    readCaFile(dir, CA_FILES.issuerCert),
    readCaFile(dir, CA_FILES.issuerKey),
    readCaFile(dir, CA_FILES.bundle),
  ]);
  let issuerCert: X509Certificate;
  let issuerKey: KeyObject;
  let roots: X509Certificate[];
  try {
    issuerCert = new X509Certificate(issuerPem);
    issuerKey = createPrivateKey(issuerKeyPem);
    roots = splitPemCertificates(bundlePem).map((pem) => new X509Certificate(pem));
  } catch (err) {
    throw new MeshcarError('ca_missing', `${dir}: CA files cannot be read: ${(err as Error).message}`);
  }
  if (!issuerCert.checkPrivateKey(issuerKey)) throw new MeshcarError('ca_missing', `${join(dir, CA_FILES.issuerKey)} does not belong to ${join(dir, CA_FILES.issuerCert)}`);
  if (!roots.some((root) => issuerCert.checkIssued(root) && issuerCert.verify(root.publicKey))) {
    throw new MeshcarError('ca_missing', `${join(dir, CA_FILES.issuerCert)} is not signed by any root in ${join(dir, CA_FILES.bundle)}`);
  }
  const trustDomain = /(?:^|\n)O=([^\n]+)/.exec(issuerCert.subject)?.[1] ?? '';
  if (expectedTrustDomain !== undefined && trustDomain !== expectedTrustDomain) {
    throw new MeshcarError('ca_missing', `the CA in ${dir} is for trust domain "${trustDomain}", not "${expectedTrustDomain}"`);
  }
  return {
    dir,
    trustDomain,
    issuer: { key: issuerKey, name: issuerName(trustDomain), spki: spkiOf(issuerKey) },
    issuerCert,
    issuerPem: splitPemCertificates(issuerPem)[0] ?? issuerPem,
    bundlePem,
    roots,
  };
}

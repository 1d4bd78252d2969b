// The SVID profile: the one place that decides what a root, an issuer and a workload leaf
// certificate say (SPIFFE X509-SVID standard + RFC 5280). Everything that signs goes through
// here, so no code path can mint a certificate that breaks the rules.

import { isIP } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { buildCertificate, keyIdentifier, type BuiltCertificate, type DistinguishedName, type ExtensionSpec } from '../pki/certificate.js';
import { describePublicKey, publicKeyFromSpki } from '../pki/keys.js';
import { octetString } from '../pki/der.js';
import { DAY_MS } from '../config/duration.js';
import { ipAddressBytes } from '../config/address.js';

export const ROOT_LIFETIME_MS = 3650 * DAY_MS;
export const ISSUER_LIFETIME_MS = 365 * DAY_MS;
export const DEFAULT_LEAF_TTL_MS = DAY_MS;

/** Backdating absorbs clock skew between hosts, but must stay small against short lifetimes. */
export function backdateMs(lifetimeMs: number): number {
  return Math.min(60_000, Math.floor(lifetimeMs / 10));
}

export interface Signer {
  readonly key: KeyObject;
  readonly name: DistinguishedName;
  readonly spki: Buffer;
}

/**
 * The CA's own certificates (root, issuer, the CA server's TLS certificate) start this much
 * before they are made (a tenth of their life at most): a sidecar whose clock is behind the
 * CA's takes an SVID up to 5 minutes ahead, but a chain backdated 60 s refused it the TLS
 * handshake first, for as long as the skew, after every CA start, renewal and issuer rotation
 * (a review: sidecars crash-looping with the CA 3 minutes ahead; OpenSSL checks every
 * certificate of the chain against its own clock).
 */
const CA_CERTIFICATE_BACKDATE_MS = 10 * 60_000;

function caBackdateMs(lifetimeMs: number): number {
  return Math.min(CA_CERTIFICATE_BACKDATE_MS, Math.floor(lifetimeMs / 10));
}

function validity(now: Date, lifetimeMs: number, notAfterCap?: Date, backdate = backdateMs(lifetimeMs)): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(now.getTime() - backdate);
  let notAfter = new Date(now.getTime() + lifetimeMs);
  // a certificate never outlives the certificate that signed it
  if (notAfterCap && notAfter > notAfterCap) notAfter = notAfterCap;
  return { notBefore, notAfter };
}

const signerKeyIds = new WeakMap<Buffer, string>();

function identifiers(subjectSpki: Buffer, issuerSpki: Buffer): ExtensionSpec[] {
  // the issuer's identifier is the same for every leaf it signs
  let authorityKeyId = signerKeyIds.get(issuerSpki);
  if (authorityKeyId === undefined) {
    authorityKeyId = keyIdentifier(issuerSpki).toString('binary');
    signerKeyIds.set(issuerSpki, authorityKeyId);
  }
  return [
    { name: 'subjectKeyIdentifier', id: '2.5.29.14', value: octetString(keyIdentifier(subjectSpki)) },
    { name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId },
  ];
}

export function rootName(trustDomain: string): DistinguishedName {
  return { organization: trustDomain, commonName: 'meshcar root CA' };
}

export function issuerName(trustDomain: string): DistinguishedName {
  return { organization: trustDomain, commonName: 'meshcar issuer CA' };
}

/** The self-signed root: signs only issuers (pathLen 1), lives ten years. */
export function issueRootCertificate(key: KeyObject, spki: Buffer, trustDomain: string, now = new Date()): Promise<BuiltCertificate> {
  const name = rootName(trustDomain);
  return buildCertificate({
    subject: name,
    issuer: name,
    subjectPublicKeySpki: spki,
    ...validity(now, ROOT_LIFETIME_MS, undefined, caBackdateMs(ROOT_LIFETIME_MS)),
    signingKey: key,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 1, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ...identifiers(spki, spki),
    ],
  });
}

/** A CA certificate signed by another: `signer` vouches for `spki` under `subject`, within its own dates. */
function signCaCertificate(signer: Signer, signerNotAfter: Date, subject: DistinguishedName, spki: Buffer, pathLen: number, lifetimeMs: number, now: Date): Promise<BuiltCertificate> {
  return buildCertificate({
    subject,
    issuer: signer.name,
    subjectPublicKeySpki: spki,
    ...validity(now, lifetimeMs, signerNotAfter, caBackdateMs(lifetimeMs)),
    signingKey: signer.key,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: pathLen, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ...identifiers(spki, signer.spki),
    ],
  });
}

/** The intermediate that signs leaves (pathLen 0), lives a year and never outlives its root. */
export function issueIssuerCertificate(root: Signer, rootNotAfter: Date, spki: Buffer, trustDomain: string, now = new Date(), lifetimeMs = ISSUER_LIFETIME_MS): Promise<BuiltCertificate> {
  return signCaCertificate(root, rootNotAfter, issuerName(trustDomain), spki, 0, lifetimeMs, now);
}

/**
 * A root rotation's bridge: the new root's name and key, signed by the old root. A client that
 * trusts only the old root still builds leaf → new issuer → this → old root; one that trusts
 * the new root stops at it. Same name as the root it bridges from, so it is self-issued and
 * does not count against the old root's pathLen 1 (RFC 5280 §4.2.1.9).
 */
export function issueCrossCertificate(oldRoot: Signer, oldRootNotAfter: Date, newRootSpki: Buffer, trustDomain: string, now = new Date()): Promise<BuiltCertificate> {
  return signCaCertificate(oldRoot, oldRootNotAfter, rootName(trustDomain), newRootSpki, 1, ROOT_LIFETIME_MS, now);
}

export interface LeafRequest {
  readonly spiffeId: string;
  readonly subjectPublicKeySpki: Buffer;
  readonly lifetimeMs: number;
  /** DNS names and IP addresses, only for the CA server's own certificate. */
  readonly serverNames?: readonly string[];
  readonly commonName?: string;
  /** The key's type when the caller has already decoded it (decoding costs ~0.3 ms). */
  readonly subjectKeyType?: 'ec' | 'rsa' | 'other';
}

/**
 * A DNS name's or IP address's SAN. An IP is encoded from its parsed bytes, never handed to
 * node-forge as text: forge read `::1%lo` as another address and `fe80::1%eth0` as a 17-byte
 * iPAddress, which clients reject. Anything that is not 4 or 16 bytes is refused.
 */
function serverNameAltName(name: string): Record<string, unknown> {
  if (isIP(name) === 0) return { type: 2, value: name };
  const bytes = ipAddressBytes(name);
  if (bytes === undefined || (bytes.length !== 4 && bytes.length !== 16)) throw new Error(`${JSON.stringify(name)} is no IP address a certificate can name (4 or 16 bytes, no zone)`);
  // forge takes a GeneralName's value as a binary string
  return { type: 7, value: bytes.toString('binary') };
}

/** A workload X509-SVID: exactly one URI SAN, not a CA, both TLS purposes. */
export function issueLeafCertificate(issuer: Signer, issuerNotAfter: Date, request: LeafRequest, now = new Date()): Promise<BuiltCertificate> {
  const keyType = request.subjectKeyType ?? describePublicKey(publicKeyFromSpki(request.subjectPublicKeySpki)).type;
  const altNames: Array<Record<string, unknown>> = [{ type: 6, value: request.spiffeId }];
  for (const name of request.serverNames ?? []) altNames.push(serverNameAltName(name));
  return buildCertificate({
    subject: { organization: issuer.name.organization, ...(request.commonName ? { commonName: request.commonName } : {}) },
    issuer: issuer.name,
    subjectPublicKeySpki: request.subjectPublicKeySpki,
    ...validity(now, request.lifetimeMs, issuerNotAfter, request.serverNames ? caBackdateMs(request.lifetimeMs) : undefined),
    signingKey: issuer.key,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      // keyEncipherment only means something for RSA key transport
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: keyType === 'rsa', critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
      ...identifiers(request.subjectPublicKeySpki, issuer.spki),
    ],
  });
}

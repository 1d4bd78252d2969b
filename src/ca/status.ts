// `meshcar ca status`: what the CA folder holds, read-only: every root by role, the signing
// issuer and the earlier ones whose leaves may still be valid, the token keys, and which step
// of a root rotation the CA is in with what is allowed next and when.

import { X509Certificate } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatApproxDuration, formatDuration } from '../config/duration.js';
import { readCaState, requireFinishedInit, requirePrivateCaFolder } from './ca-state.js';
import { nextRotationStepAt, readLeafLifetime } from './leaf-lifetime.js';
import { loadCaMaterial, readOptionalCert, ROTATION_FILES } from './store.js';
import { TokenKeys } from './token-keys.js';
import { shellWord } from '../shell-word.js';
import { firstRefusalInOrder } from '../first-refusal.js';

export interface CertificateStatus {
  readonly serial: string;
  readonly subjectKeyId: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface CaStatus {
  readonly dir: string;
  readonly trustDomain: string;
  readonly roots: ReadonlyArray<CertificateStatus & { role: 'active' | 'pending' | 'retiring' }>;
  /** The signing issuer first, then earlier ones (their leaves may still be valid). */
  readonly issuers: ReadonlyArray<CertificateStatus & { signing: boolean; rootSerial: string | null }>;
  readonly rootRotation: {
    readonly step: 'none' | 'added' | 'activated';
    /** What to run next and from when (ISO 8601), when a rotation is under way. */
    readonly next?: { readonly command: string; readonly allowedFrom: string };
    readonly addedAt?: string;
    readonly activatedAt?: string;
  };
  readonly tokenKeys: ReadonlyArray<{ kid: string; state: string; createdAt: string }>;
  readonly leafMaxTtl: string;
}

function describe(cert: X509Certificate): CertificateStatus {
  return {
    serial: cert.serialNumber.toLowerCase(),
    subjectKeyId: subjectKeyIdOf(cert),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

/** The SKI as colon-separated hex, read from the DER (Node has no accessor for it). */
function subjectKeyIdOf(cert: X509Certificate): string {
  const der = cert.raw;
  // extension OID 2.5.29.14, then OCTET STRING wrapping an OCTET STRING of the id
  const marker = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04]);
  const at = der.indexOf(marker);
  if (at === -1) return '';
  const inner = at + marker.length + 1; // skip the outer OCTET STRING's length byte
  if (der[inner] !== 0x04) return '';
  const length = der[inner + 1] as number;
  return [...der.subarray(inner + 2, inner + 2 + length)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export async function caStatus(dir: string): Promise<CaStatus> {
  // before the reads below run side by side: a bad folder is one error, not whichever read fails first
  await requirePrivateCaFolder(dir);
  await requireFinishedInit(dir);
  // read only: status (and check, through it) runs without the CA's lock, beside ca serve or a
  // rotation; it wrote a folder's first token key, and finished a half-done issuer switch
  const [material, state, lifetime, tokenKeys] = await firstRefusalInOrder([loadCaMaterial(dir, undefined, true), readCaState(dir), readLeafLifetime(dir), TokenKeys.read(dir)]);
  const rootSerialOf = (cert: X509Certificate) => material.rootsByRole.find((r) => cert.checkIssued(r.cert))?.cert.serialNumber.toLowerCase() ?? null;
  const issuers: Array<CertificateStatus & { signing: boolean; rootSerial: string | null }> = [{ ...describe(material.issuerCert), signing: true, rootSerial: rootSerialOf(material.issuerCert) }];
  const archive = join(dir, ROTATION_FILES.issuersDir);
  const archived: X509Certificate[] = [];
  for (const entry of await readdir(archive).catch(() => [] as string[])) {
    const cert = await readOptionalCert(archive, entry).catch(() => undefined);
    if (cert && Date.parse(cert.validTo) > Date.now()) archived.push(cert);
  }
  archived.sort((a, b) => Date.parse(b.validFrom) - Date.parse(a.validFrom));
  for (const cert of archived) issuers.push({ ...describe(cert), signing: false, rootSerial: rootSerialOf(cert) });

  const rotation = state.rootRotation;
  let rootRotation: CaStatus['rootRotation'] = { step: 'none' };
  if (rotation?.step === 'added') {
    rootRotation = { step: 'added', addedAt: rotation.addedAt, next: { command: 'root activate', allowedFrom: new Date(nextRotationStepAt(rotation, lifetime)).toISOString() } };
  } else if (rotation?.step === 'activated') {
    const from = nextRotationStepAt(rotation, lifetime);
    rootRotation = { step: 'activated', addedAt: rotation.addedAt, ...(rotation.activatedAt ? { activatedAt: rotation.activatedAt } : {}), next: { command: 'root retire', allowedFrom: new Date(from).toISOString() } };
  }
  return {
    dir,
    trustDomain: material.trustDomain,
    roots: material.rootsByRole.map((r) => ({ role: r.role, ...describe(r.cert) })),
    issuers,
    rootRotation,
    // none yet (a folder made before token keys): ca serve makes the first
    tokenKeys: (tokenKeys?.info.keys ?? []).map((k) => ({ kid: k.kid, state: k.state, createdAt: k.createdAt })),
    leafMaxTtl: formatDuration(lifetime.maxTtlMs),
  };
}

const STEP_TEXT = {
  none: 'none under way',
  added: 'step 1 of 3 done (root add): the pending root is in the bundle, the active root signs',
  activated: 'step 2 of 3 done (root activate): the new root signs, the old one is retiring (still trusted)',
} as const;

export function formatCaStatus(status: CaStatus, now = Date.now()): string {
  const left = (iso: string) => {
    const ms = Date.parse(iso) - now;
    return ms <= 0 ? 'expired' : `${formatApproxDuration(ms)} left`;
  };
  const cert = (c: CertificateStatus) => `serial ${c.serial}  ski ${c.subjectKeyId}  notAfter ${c.notAfter} (${left(c.notAfter)})`;
  const lines = [`CA ${status.dir} for spiffe://${status.trustDomain} (leaf lifetime ${status.leafMaxTtl})`, `root rotation: ${STEP_TEXT[status.rootRotation.step]}`];
  const next = status.rootRotation.next;
  if (next) {
    const wait = Date.parse(next.allowedFrom) - now;
    lines.push(`  next: meshcar ca ${next.command} --dir ${shellWord(status.dir)}, ${wait > 0 ? `allowed from ${next.allowedFrom} (in ${formatApproxDuration(wait)})` : 'allowed now'}`);
  }
  lines.push('roots:');
  for (const root of status.roots) lines.push(`  ${root.role.padEnd(9)} ${cert(root)}`);
  lines.push('issuers:');
  for (const issuer of status.issuers) lines.push(`  ${(issuer.signing ? 'signing' : 'previous').padEnd(9)} ${cert(issuer)}  root ${issuer.rootSerial ?? '(retired)'}`);
  lines.push('token keys:');
  for (const key of status.tokenKeys) lines.push(`  ${key.state.padEnd(9)} kid ${key.kid}  created ${key.createdAt}`);
  if (status.tokenKeys.length === 0) lines.push('  none yet: ca serve makes the first');
  return `${lines.join('\n')}\n`;
}

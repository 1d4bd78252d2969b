// The CA's files on disk: root and issuer keys and certificates, and the trust bundle.
// Keys are written 0600 in a 0700 folder (init tightens an existing folder; loading refuses one
// others can write to); an existing CA is never overwritten without --force, and an init
// killed half-way is marked in state.json, refused by the rest and finished by a second init.
// During a root rotation (lifecycle.ts) a pending or a retiring root and a cross certificate
// sit beside them; loadCaMaterial reads whatever is there, with each root's role.

import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { refuseKernelPath, refuseUnexpandedTilde } from '../user-paths.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { splitPemCertificates } from '../pki/pem.js';
import { issueIssuerCertificate, issueRootCertificate, issuerName, rootName, type Signer } from './x509-profile.js';
import { type CaState, readCaState, readCaStateAsIs, refuseSwappableCaFolder, requireFinishedInit, requirePrivateCaFolder, STATE_FILE, writeCaState } from './ca-state.js';
import { withCaLock } from './folder-lock.js';
import { makePrivateCaFolder, refuseForeignFolder } from './init-folder.js';
import { TOKEN_KEY_FILE, TOKEN_KEYS_FILE, TokenKeys } from './token-keys.js';
import { finishIssuerSwitch } from './issuer-switch.js';
import { shellWord } from '../shell-word.js';
import { caCertificate, caPrivateKey } from './ca-pem.js';
import { trustDomainFix } from '../config/ca-trust-domain.js';
import { firstRefusalInOrder } from '../first-refusal.js';

import { CA_FILES } from './file-names.js';

export { CA_FILES };

/** Present only during a root rotation (see lifecycle.ts). */
export const ROTATION_FILES = {
  pendingCert: 'root-pending.crt',
  pendingKey: 'root-pending.key',
  retiringCert: 'root-retiring.crt',
  /** The new root's key signed by the old root: clients that trust only the old root still verify. */
  cross: 'cross.crt',
  /** Certificates of issuers that no longer sign; their leaves may still be valid. */
  issuersDir: 'issuers',
} as const;

export type RootRole = 'active' | 'pending' | 'retiring';

export interface CaRoot {
  readonly role: RootRole;
  readonly cert: X509Certificate;
}

export interface CaMaterial {
  readonly dir: string;
  readonly trustDomain: string;
  readonly issuer: Signer;
  readonly issuerCert: X509Certificate;
  readonly issuerPem: string;
  /** Every root this CA's workloads trust (PEM); may hold more than one during root rotation. */
  readonly bundlePem: string;
  readonly roots: readonly X509Certificate[];
  /** Each root on disk by its role (active first). */
  readonly rootsByRole: readonly CaRoot[];
  /** Sent after the issuer in every chain while the new root is active and the old one retiring. */
  readonly crossPem: string;
  readonly state: CaState;
  /** Loaded read-only over an issuer switch a crash stopped halfway: the staged certificate is the issuer's, not yet renamed in. */
  readonly switchPending?: true;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

export function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/**
 * Makes a CA in `dir`. Crash-safe: state.json says "initializing" before the first key is
 * written and is rewritten without it as the last write, so a folder an init was killed in is
 * refused by every other command (nothing signs with its keys) and a second init makes it
 * afresh. A CA whose init finished is never re-keyed without --force. `finished` says that
 * this run redid an unfinished one.
 */
export async function initCaDirectory(typedDir: string, trustDomain: string, options: { force: boolean }): Promise<{ finished: boolean }> {
  refuseUnexpandedTilde(typedDir);
  // judged, made and written as one path: the path judgement and the files' names (join) take
  // `..` away as text, the kernel after the folder before it (a missing one, a link): `x/../ca`
  // with x missing made ca and then was not found (a re-review). A `..` is resolved first.
  const dir = typedDir.split(/[\\/]/).includes('..') ? resolve(typedDir) : typedDir;
  refuseKernelPath(dir);
  // an existing --dir must be a folder (mkdir would say only EEXIST)
  if ((await stat(dir).catch(() => undefined))?.isDirectory() === false) throw new MeshcarError('bad_path', `${dir}: is a file, not a folder; give a new folder or an existing one for the CA`);
  // before the folder's mode is touched: a folder that is not a CA's is left as it was
  await refuseForeignFolder(dir, [...Object.values(CA_FILES), STATE_FILE, TOKEN_KEY_FILE, TOKEN_KEYS_FILE]);
  // and so is an existing CA's
  await stateBeforeInit(dir, trustDomain, options.force);
  // the folders above it judged before anything is made there (requirePrivateCaFolder judges
  // them again once it is): a mkdir followed the path the check then refused, leaving a folder
  await refuseSwappableCaFolder(dir);
  await makePrivateCaFolder(dir);
  // two inits at once (two CA pods' init containers on one volume) would mix their keys
  return withCaLock(dir, async () => {
    const previous = await stateBeforeInit(dir, trustDomain, options.force);
    // a forced re-init starts a new history; the generation still moves on, so a running server reloads
    const marked = await writeCaState(dir, { initializing: { since: new Date().toISOString(), trustDomain } }, previous);
    // a forced re-init forgets the old CA's rotation and its token keys with it
    for (const file of [...Object.values(ROTATION_FILES), TOKEN_KEY_FILE, TOKEN_KEYS_FILE]) await rm(join(dir, file), { recursive: true, force: true });
    const [rootKeys, issuerKeys] = await Promise.all([generateWorkloadKey(), generateWorkloadKey()]);
    const rootKey = createPrivateKey(rootKeys.privateKeyPem);
    const issuerKey = createPrivateKey(issuerKeys.privateKeyPem);
    const root = await issueRootCertificate(rootKey, spkiOf(rootKey), trustDomain);
    const rootNotAfter = new Date(new X509Certificate(root.pem).validTo);
    const issuer = await issueIssuerCertificate({ key: rootKey, name: rootName(trustDomain), spki: spkiOf(rootKey) }, rootNotAfter, spkiOf(issuerKey), trustDomain);
    await writeFileAtomic(join(dir, CA_FILES.rootKey), rootKeys.privateKeyPem, 0o600);
    await writeFileAtomic(join(dir, CA_FILES.issuerKey), issuerKeys.privateKeyPem, 0o600);
    await writeFileAtomic(join(dir, CA_FILES.rootCert), root.pem, 0o644);
    await writeFileAtomic(join(dir, CA_FILES.issuerCert), issuer.pem, 0o644);
    await writeFileAtomic(join(dir, CA_FILES.bundle), root.pem, 0o644);
    await TokenKeys.rotate(dir, 'rotate');
    // the commit: from this rename on the folder is a CA
    await writeCaState(dir, {}, marked);
    return { finished: previous.initializing !== undefined };
  });
}

/**
 * The folder's state when init may make a CA in it (none there, an unfinished init's, or
 * --force); otherwise the refusal, saying whether the CA there is whole or part of one.
 */
async function stateBeforeInit(dir: string, trustDomain: string, force: boolean): Promise<CaState> {
  // unreadable: the files below decide (and --force replaces it)
  const state = await readCaStateAsIs(dir).catch(() => undefined);
  if (force || state?.initializing) return state ?? { generation: 0 };
  const files = Object.values(CA_FILES);
  const present: string[] = [];
  for (const file of files) if (await exists(join(dir, file))) present.push(file);
  if (present.length === files.length) {
    throw new MeshcarError('ca_exists', `${join(dir, CA_FILES.issuerKey)} already exists: ${dir} holds a CA; pass --force to replace it (every issued certificate stops being trusted)`);
  }
  // a sidecar's identity folder (svid.crt, svid.key, bundle.pem), or `ca issue --out`'s: its
  // bundle.pem is no CA part, and --force would have put a CA among a sidecar's keys (review)
  if (present.length === 1 && present[0] === CA_FILES.bundle && ((await exists(join(dir, 'svid.crt'))) || (await exists(join(dir, 'svid.key'))))) {
    throw new MeshcarError('ca_exists', `${dir} holds a sidecar's SVID (svid.crt, svid.key, bundle.pem), not a CA: give ca init an empty or new folder for the CA`);
  }
  if (present.length > 0) {
    // no "initializing" mark: files lost since, or an init by a meshcar before the mark was killed
    const missing = files.filter((file) => !present.includes(file));
    throw new MeshcarError('ca_exists', `${dir} holds part of a CA (${present.join(', ')}; missing ${missing.join(', ')}) and no record of an unfinished init: restore the missing files from a backup, or, if nothing was issued from it, make a new CA with "meshcar ca init --dir ${shellWord(dir)} --trust-domain ${trustDomain} --force"`);
  }
  return state ?? { generation: 0 };
}

export async function readCaFile(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new MeshcarError('ca_missing', `${join(dir, file)} ${reason}: run "meshcar ca init --dir ${shellWord(dir)} --trust-domain TD" first`);
  }
}

/** A certificate file that may be absent; undefined when it is. */
export async function readOptionalCert(dir: string, file: string): Promise<X509Certificate | undefined> {
  if (!(await exists(join(dir, file)))) return undefined;
  return caCertificate(dir, file, await readCaFile(dir, file));
}

/** Loads and cross-checks the issuer and bundle (the root key is not needed to serve). */
export async function loadCaMaterial(dir: string, expectedTrustDomain?: string, readOnly = false): Promise<CaMaterial> {
  // serve, issue, token and status all load through here: none trusts keys others could swap
  await requirePrivateCaFolder(dir);
  // before the reads side by side: a half-made folder is one line saying so, not a missing file
  await requireFinishedInit(dir);
  // read side by side, but the refusal is the first file's in this order, whichever read
  // failed first (Promise.all's pick named issuer.key or issuer.crt by chance for an empty folder)
  const [readIssuerPem, issuerKeyPem, bundlePem, state] = await firstRefusalInOrder([
    readCaFile(dir, CA_FILES.issuerCert),
    readCaFile(dir, CA_FILES.issuerKey),
    readCaFile(dir, CA_FILES.bundle),
    readCaState(dir),
  ]);
  const rootsByRole: CaRoot[] = [];
  let crossPem = '';
  try {
    for (const [role, file] of [['active', CA_FILES.rootCert], ['pending', ROTATION_FILES.pendingCert], ['retiring', ROTATION_FILES.retiringCert]] as const) {
      const cert = await readOptionalCert(dir, file);
      if (cert) rootsByRole.push({ role, cert });
    }
    if (state.rootRotation?.step === 'activated') crossPem = (await readOptionalCert(dir, ROTATION_FILES.cross))?.toString() ?? '';
  } catch (err) {
    // readOptionalCert names the file itself
    if (err instanceof MeshcarError) throw err;
    throw new MeshcarError('ca_missing', `${dir}: root certificates cannot be read: ${(err as Error).message}`);
  }
  let issuerPem = readIssuerPem;
  let issuerCert = caCertificate(dir, CA_FILES.issuerCert, issuerPem);
  let switchPending = false;
  const issuerKey = caPrivateKey(dir, CA_FILES.issuerKey, issuerKeyPem);
  const roots = splitPemCertificates(bundlePem).map((pem) => caCertificate(dir, CA_FILES.bundle, pem));
  // no certificate at all: "issuer.crt is not signed by any root" would blame the wrong file
  if (roots.length === 0) throw new MeshcarError('ca_missing', `${join(dir, CA_FILES.bundle)} holds no PEM certificate; the CA cannot use it: restore it from a backup`);
  if (!issuerCert.checkPrivateKey(issuerKey)) {
    // an issuer switch that stopped between its two renames (issuer-switch.ts) is finished here
    const finished = await finishIssuerSwitch(dir, issuerKey, readOnly);
    if (finished === undefined) throw new MeshcarError('ca_missing', `${join(dir, CA_FILES.issuerKey)} does not belong to ${join(dir, CA_FILES.issuerCert)} (a new issuer pair can be made with: meshcar ca rotate-issuer --dir ${shellWord(dir)})`);
    issuerPem = finished;
    issuerCert = caCertificate(dir, CA_FILES.issuerCert, finished);
    switchPending = readOnly;
  }
  if (!roots.some((root) => issuerCert.checkIssued(root) && issuerCert.verify(root.publicKey))) {
    throw new MeshcarError('ca_missing', `${join(dir, CA_FILES.issuerCert)} is not signed by any root in ${join(dir, CA_FILES.bundle)}`);
  }
  const trustDomain = /(?:^|\n)O=([^\n]+)/.exec(issuerCert.subject)?.[1] ?? '';
  if (expectedTrustDomain !== undefined && trustDomain !== expectedTrustDomain) {
    throw new MeshcarError('ca_missing', `the CA in ${dir} is for trust domain "${trustDomain}", not "${expectedTrustDomain}" (the config's trustDomain): ${trustDomainFix(trustDomain, expectedTrustDomain)}`);
  }
  return {
    dir,
    trustDomain,
    issuer: { key: issuerKey, name: issuerName(trustDomain), spki: spkiOf(issuerKey) },
    issuerCert,
    issuerPem: splitPemCertificates(issuerPem)[0] ?? issuerPem,
    bundlePem,
    roots,
    rootsByRole,
    crossPem,
    state,
    ...(switchPending ? { switchPending: true as const } : {}),
  };
}

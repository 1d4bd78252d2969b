// The CA's own lifecycle, as file operations on its folder: a new issuer under the active root,
// and a root rotation in three steps. Each step writes its new files first and state.json last,
// so a running CA server (which watches state.json) reloads once, onto a complete set.
//
//   root add       new root, pending: in bundle.pem and in every signing response, not signing;
//                  a cross certificate (new root's key signed by the old root) is made now.
//   root activate  a new issuer under the new root signs; the old root is retiring (still in the
//                  bundle); chains carry the cross certificate, so a client that only knows the
//                  old root still verifies. Refused until every leaf issued before add has
//                  expired (a leaf lifetime, or longer for longer leaves: leaf-lifetime.ts).
//   root retire    the old root leaves the bundle. Refused until the old root's last leaves
//                  have expired: a leaf lifetime after activation, or longer likewise.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { formatApproxDuration, formatDuration } from '../config/duration.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { CA_FILES, ROTATION_FILES, readCaFile, readOptionalCert, spkiOf } from './store.js';
import { readCaState, writeCaState, type CaState } from './ca-state.js';
import { withCaLock } from './folder-lock.js';
import { installIssuerPair } from './issuer-switch.js';
import { leavesExpireBy, nextRotationStepAt, readLeafLifetime } from './leaf-lifetime.js';
import { droppedKeysWarning, TokenKeys } from './token-keys.js';
import { ISSUER_LIFETIME_MS, issueCrossCertificate, issueIssuerCertificate, issueRootCertificate, rootName, type Signer } from './x509-profile.js';
import { shellWord } from '../shell-word.js';
import { caCertificate, caPrivateKey } from './ca-pem.js';
import { firstRefusalInOrder } from '../first-refusal.js';

export interface StepResult {
  /** What was done, one line for the operator. */
  readonly summary: string;
  /** Set when --force overrode a refusal, or a token key rotation dropped an unreadable key. */
  readonly warning?: string;
}

interface LoadedRoot {
  readonly signer: Signer;
  readonly cert: X509Certificate;
}

async function loadRoot(dir: string, certFile: string, keyFile: string): Promise<LoadedRoot> {
  const [certPem, keyPem] = await firstRefusalInOrder([readCaFile(dir, certFile), readCaFile(dir, keyFile)]);
  const cert = caCertificate(dir, certFile, certPem);
  const key = caPrivateKey(dir, keyFile, keyPem);
  if (!cert.checkPrivateKey(key)) throw new MeshcarError('ca_missing', `${join(dir, keyFile)} does not belong to ${join(dir, certFile)}`);
  const trustDomain = /(?:^|\n)O=([^\n]+)/.exec(cert.subject)?.[1] ?? '';
  return { cert, signer: { key, name: rootName(trustDomain), spki: spkiOf(key) } };
}

function trustDomainOf(root: LoadedRoot): string {
  return root.signer.name.organization ?? '';
}

function serialOf(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase();
}

/** Moves the signing issuer's certificate to issuers/ (its key is overwritten next). */
async function archiveIssuer(dir: string): Promise<void> {
  const current = await readOptionalCert(dir, CA_FILES.issuerCert);
  if (!current) return;
  const archive = join(dir, ROTATION_FILES.issuersDir);
  await mkdir(archive, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(archive, `${serialOf(current)}.crt`), current.toString(), 0o644);
}

/** Signs a new issuer under `root` and makes it the signing one. */
async function installIssuer(dir: string, root: LoadedRoot, lifetimeMs: number, now: Date): Promise<X509Certificate> {
  const keys = await generateWorkloadKey();
  const key: KeyObject = createPrivateKey(keys.privateKeyPem);
  const built = await issueIssuerCertificate(root.signer, new Date(root.cert.validTo), spkiOf(key), trustDomainOf(root), now, lifetimeMs);
  await archiveIssuer(dir);
  // staged, then renamed in: a crash between the two files is finished at the next load
  await installIssuerPair(dir, keys.privateKeyPem, built.pem);
  return new X509Certificate(built.pem);
}

function describeIssuer(issuer: X509Certificate): string {
  return `issuer serial ${serialOf(issuer)} valid until ${new Date(issuer.validTo).toISOString()}`;
}

/** A new issuer under the active root; it signs from the CA server's next signing. */
async function rotateIssuerUnlocked(dir: string, options: { lifetimeMs?: number; now?: Date } = {}): Promise<StepResult & { issuer: X509Certificate }> {
  const now = options.now ?? new Date();
  const state = await readCaState(dir);
  const root = await loadRoot(dir, CA_FILES.rootCert, CA_FILES.rootKey);
  const issuer = await installIssuer(dir, root, options.lifetimeMs ?? ISSUER_LIFETIME_MS, now);
  await writeCaState(dir, { ...state, issuerRotatedAt: now.toISOString() }, state);
  const capped = issuer.validTo === root.cert.validTo ? ' (capped at the root\'s expiry: rotate the root)' : '';
  return { issuer, summary: `new ${describeIssuer(issuer)}${capped}; it signs from the CA server's next signing` };
}

/** Throws the refusal (why; what to do), or with --force returns it as a warning. */
function refuse(why: string, whatToDo: string, force: boolean): string {
  if (!force) throw new MeshcarError('forbidden', `${why}; ${whatToDo}`);
  return `${why.replace(' refused: ', ' forced: ')}; going ahead because of --force`;
}

/** The wait a step's refusal names: one leaf lifetime, or the longer leaves that set it. */
function waitReason(allowedAt: number, from: string | undefined, leafTtl: number, lifetimeText: string, longerText: string): string {
  return allowedAt > Date.parse(from ?? '') + leafTtl ? longerText : lifetimeText;
}

/** Step 1: a new pending root, trusted everywhere before it signs anything. */
async function rootAddUnlocked(dir: string, options: { now?: Date } = {}): Promise<StepResult> {
  const now = options.now ?? new Date();
  const state = await readCaState(dir);
  if (state.rootRotation) {
    const next = state.rootRotation.step === 'added' ? 'root activate' : 'root retire';
    throw new MeshcarError('forbidden', `root add refused: a root rotation is already under way (${state.rootRotation.step} at ${state.rootRotation.step === 'added' ? state.rootRotation.addedAt : state.rootRotation.activatedAt}); finish it with "meshcar ca ${next} --dir ${shellWord(dir)}" first`);
  }
  const active = await loadRoot(dir, CA_FILES.rootCert, CA_FILES.rootKey);
  const keys = await generateWorkloadKey();
  const key = createPrivateKey(keys.privateKeyPem);
  const root = await issueRootCertificate(key, spkiOf(key), trustDomainOf(active), now);
  const cross = await issueCrossCertificate(active.signer, new Date(active.cert.validTo), spkiOf(key), trustDomainOf(active), now);
  await writeFileAtomic(join(dir, ROTATION_FILES.pendingKey), keys.privateKeyPem, 0o600);
  await writeFileAtomic(join(dir, ROTATION_FILES.pendingCert), root.pem, 0o644);
  await writeFileAtomic(join(dir, ROTATION_FILES.cross), cross.pem, 0o644);
  await writeFileAtomic(join(dir, CA_FILES.bundle), active.cert.toString() + root.pem, 0o644);
  // fixed now: leaves signed from here on carry both roots, so they need not be waited for
  const lifetime = await readLeafLifetime(dir);
  const activateFrom = leavesExpireBy(lifetime, now.getTime());
  await writeCaState(dir, { ...state, rootRotation: { step: 'added', addedAt: now.toISOString(), activateFrom: new Date(activateFrom).toISOString() } }, state);
  const why = waitReason(activateFrom, now.toISOString(), lifetime.maxTtlMs, `one leaf lifetime, ${formatDuration(lifetime.maxTtlMs)}`, 'when the longest leaf issued so far expires');
  return {
    summary: `added pending root serial ${root.serialHex}; bundle.pem holds 2 roots and the CA hands them out with every certificate and at GET /v1/bundle; "root activate" is allowed from ${new Date(activateFrom).toISOString()} (${why})`,
  };
}

/** Step 2: a new issuer under the new root signs; the old root retires. */
async function rootActivateUnlocked(dir: string, options: { force?: boolean; now?: Date } = {}): Promise<StepResult> {
  const now = options.now ?? new Date();
  const state = await readCaState(dir);
  if (state.rootRotation?.step !== 'added') {
    throw new MeshcarError('forbidden', state.rootRotation ? `root activate refused: the new root is active already (since ${state.rootRotation.activatedAt}); the next step is "meshcar ca root retire --dir ${shellWord(dir)}"` : `root activate refused: there is no pending root; start with "meshcar ca root add --dir ${shellWord(dir)}"`);
  }
  const lifetime = await readLeafLifetime(dir);
  const leafTtl = lifetime.maxTtlMs;
  const allowedAt = nextRotationStepAt(state.rootRotation, lifetime);
  let warning: string | undefined;
  if (now.getTime() < allowedAt) {
    const within = waitReason(allowedAt, state.rootRotation.addedAt, leafTtl, `within one leaf lifetime, ${formatDuration(leafTtl)}`, `before its current one expires, and a leaf issued before the add is valid until ${new Date(allowedAt).toISOString()}`);
    warning = refuse(`root activate refused: the new root was added at ${state.rootRotation.addedAt} and may not have reached every sidecar yet (each gets it with its next certificate, ${within})`, `wait until ${new Date(allowedAt).toISOString()} (${formatApproxDuration(allowedAt - now.getTime())} from now), or pass --force once every sidecar shows meshcar_identity_bundle_roots 2`, options.force === true);
  }
  let issuer: X509Certificate | undefined;
  let newRoot: X509Certificate | undefined;
  if (!(await newRootActive(dir))) {
    const pending = await loadRoot(dir, ROTATION_FILES.pendingCert, ROTATION_FILES.pendingKey);
    const old = await readCaFile(dir, CA_FILES.rootCert);
    await writeFileAtomic(join(dir, ROTATION_FILES.retiringCert), old, 0o644);
    issuer = await installIssuer(dir, pending, ISSUER_LIFETIME_MS, now);
    // root.key becomes the new root's: the old root's key is gone, nothing signs with it again
    await writeFileAtomic(join(dir, CA_FILES.rootKey), pending.signer.key.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
    await writeFileAtomic(join(dir, CA_FILES.rootCert), pending.cert.toString(), 0o644);
    newRoot = pending.cert;
  } else {
    // a run killed after the new root became root.crt: its issuer is installed already
    // (before root.crt), and root-retiring.crt holds the old root; the rest is finished here
    [newRoot, issuer] = await Promise.all([readOptionalCert(dir, CA_FILES.rootCert), readOptionalCert(dir, CA_FILES.issuerCert)]);
    if (!newRoot || !issuer) throw new MeshcarError('ca_missing', `${dir}: ${newRoot ? CA_FILES.issuerCert : CA_FILES.rootCert} is missing`);
  }
  await rm(join(dir, ROTATION_FILES.pendingKey), { force: true });
  await rm(join(dir, ROTATION_FILES.pendingCert), { force: true });
  // once per activation: a second rotation would retire the key that signed the tokens made
  // before it, which keep working until root retire
  const tokenKeys = (await TokenKeys.rotatedSince(dir, Date.parse(state.rootRotation.addedAt))) ? undefined : await TokenKeys.rotate(dir, 'rotate', now);
  const dropped = tokenKeys && droppedKeysWarning(dir, tokenKeys);
  if (dropped) warning = warning ? `${warning}; ${dropped}` : dropped;
  // fixed now, under the lock: every leaf of the old root is counted in it (leaf-lifetime.ts)
  const retireFrom = new Date(leavesExpireBy(await readLeafLifetime(dir), now.getTime())).toISOString();
  const rotation = { step: 'activated' as const, addedAt: state.rootRotation.addedAt, activatedAt: now.toISOString(), leafMaxTtlMs: leafTtl, retireFrom };
  await writeCaState(dir, { ...state, rootRotation: rotation }, state);
  return {
    summary: `activated root serial ${serialOf(newRoot)}: new ${describeIssuer(issuer)} signs from the CA server's next signing; a new token key signs tokens (older tokens keep working until "root retire"); "root retire" is allowed from ${retireFrom}`,
    ...(warning ? { warning } : {}),
  };
}

/**
 * Whether an earlier `root activate` got as far as making the pending root root.crt, and was
 * stopped before it recorded the step: the pending certificate is root.crt (its key may be gone
 * already), or both pending files are gone and root-retiring.crt holds another root. Re-doing
 * the step from the start would then write the new root as the retiring one.
 */
async function newRootActive(dir: string): Promise<boolean> {
  const [active, pending, retiring] = await Promise.all([readOptionalCert(dir, CA_FILES.rootCert), readOptionalCert(dir, ROTATION_FILES.pendingCert), readOptionalCert(dir, ROTATION_FILES.retiringCert)]);
  if (!active) return false;
  if (pending) return pending.fingerprint256 === active.fingerprint256;
  return retiring !== undefined && retiring.fingerprint256 !== active.fingerprint256;
}

/**
 * Which tokens retire refuses, said truly: those of every key before the current one. That key
 * is root activate's own unless `rotate-token-key` made one after root add, which activate then
 * did not replace (a second rotation would have cut the tokens of the key before at once); the
 * tokens it signed before activate stay valid, and the summary said they were refused.
 */
function keptTokensSaid(keyMadeAt: string | undefined, activatedAt: string | undefined): string {
  if (keyMadeAt === undefined) return 'tokens made before "root activate" are refused from now on';
  const byActivate = activatedAt !== undefined && Date.parse(keyMadeAt) >= Date.parse(activatedAt);
  return byActivate
    ? 'tokens made before "root activate" are refused from now on'
    : `tokens made before ${keyMadeAt} are refused from now on (the current token key was made then, after "root add", by "rotate-token-key" or a "root activate" run again: the tokens it signed before "root activate" keep working)`;
}

/** Step 3: the old root leaves the bundle, with its issuers and the previous token key. */
async function rootRetireUnlocked(dir: string, options: { force?: boolean; now?: Date } = {}): Promise<StepResult> {
  const now = options.now ?? new Date();
  const state = await readCaState(dir);
  if (state.rootRotation?.step !== 'activated') {
    throw new MeshcarError('forbidden', state.rootRotation ? `root retire refused: the new root is not active yet; run "meshcar ca root activate --dir ${shellWord(dir)}" first` : `root retire refused: no root rotation is under way; start with "meshcar ca root add --dir ${shellWord(dir)}"`);
  }
  const lifetime = await readLeafLifetime(dir);
  const leafTtl = state.rootRotation.leafMaxTtlMs ?? lifetime.maxTtlMs;
  const allowedAt = nextRotationStepAt(state.rootRotation, lifetime);
  let warning: string | undefined;
  if (now.getTime() < allowedAt) {
    const longer = waitReason(allowedAt, state.rootRotation.activatedAt, leafTtl, '', '; a longer leaf signed before, offline or under a larger maxTtl, until then');
    warning = refuse(`root retire refused: leaves signed under the old root can be valid until ${new Date(allowedAt).toISOString()} (activated at ${state.rootRotation.activatedAt}, leaf lifetime ${formatDuration(leafTtl)}${longer}), and peers would stop trusting them`, `wait ${formatApproxDuration(allowedAt - now.getTime())}, or pass --force if no such leaf is in use`, options.force === true);
  }
  // each write below is whole or absent, and none depends on a file removed before it, so a
  // run stopped anywhere is finished by running the step again (state.json still says activated)
  const retiring = await readOptionalCert(dir, ROTATION_FILES.retiringCert);
  const active = caCertificate(dir, CA_FILES.rootCert, await readCaFile(dir, CA_FILES.rootCert));
  await writeFileAtomic(join(dir, CA_FILES.bundle), active.toString(), 0o644);
  await pruneIssuers(dir, active);
  const kept = (await TokenKeys.rotate(dir, 'retire-previous', now)).info.keys.find((k) => k.state === 'current');
  await rm(join(dir, ROTATION_FILES.cross), { force: true });
  // last of the files: until it is gone, a second run can still name the root it retires
  await rm(join(dir, ROTATION_FILES.retiringCert), { force: true });
  const { rootRotation: _done, ...rest } = state;
  await writeCaState(dir, { ...rest, rootRetiredAt: now.toISOString() }, state);
  return {
    summary: `retired root serial ${retiring ? serialOf(retiring) : '(its certificate removed by an earlier run that stopped part way)'}: bundle.pem holds only root serial ${serialOf(active)}; ${keptTokensSaid(kept?.createdAt, state.rootRotation.activatedAt)}`,
    ...(warning ? { warning } : {}),
  };
}

/**
 * Archived issuers of a retired root are of no more use to anyone: those the active root did not
 * sign. Told by the root that stays, not by root-retiring.crt: a folder left by a run stopped
 * after that file was removed (earlier versions removed it first) is pruned by the next run.
 */
async function pruneIssuers(dir: string, activeRoot: X509Certificate): Promise<void> {
  const archive = join(dir, ROTATION_FILES.issuersDir);
  const entries = await readdir(archive).catch(() => [] as string[]);
  for (const entry of entries) {
    const cert = await readOptionalCert(archive, entry).catch(() => undefined);
    // both roots carry the same name: the signature tells them apart
    if (cert && !(cert.checkIssued(activeRoot) && cert.verify(activeRoot.publicKey))) await rm(join(archive, entry), { force: true });
  }
}

/** Its own command: a new token key; tokens of the one before keep working, older ones stop. */
async function rotateTokenKeyUnlocked(dir: string, options: { now?: Date } = {}): Promise<StepResult> {
  const state: CaState = await readCaState(dir);
  // the keys as they were may be unreadable: this command is the way out their error names
  const before = (await TokenKeys.load(dir).catch(() => undefined))?.info.retired.length ?? 0;
  const keys = await TokenKeys.rotate(dir, 'rotate', options.now);
  await writeCaState(dir, state, state);
  const retired = keys.info.retired.length - before - keys.dropped.length;
  const warning = droppedKeysWarning(dir, keys);
  return { summary: `new token key ${keys.signer.kid} signs tokens; ${keys.info.keys.some((k) => k.state === 'previous') ? 'tokens of the previous key keep working until they expire' : 'there is no previous key (tokens already handed out stop working)'}${retired > 0 ? `; ${retired} older key(s) retired` : ''}`, ...(warning ? { warning } : {}) };
}

// Every step holds the folder's lock (ca-state.ts): one change of the CA at a time.

export function rotateIssuer(dir: string, options: { lifetimeMs?: number; now?: Date } = {}): Promise<StepResult & { issuer: X509Certificate }> {
  return withCaLock(dir, () => rotateIssuerUnlocked(dir, options));
}

export function rootAdd(dir: string, options: { now?: Date } = {}): Promise<StepResult> {
  return withCaLock(dir, () => rootAddUnlocked(dir, options));
}

export function rootActivate(dir: string, options: { force?: boolean; now?: Date } = {}): Promise<StepResult> {
  return withCaLock(dir, () => rootActivateUnlocked(dir, options));
}

export function rootRetire(dir: string, options: { force?: boolean; now?: Date } = {}): Promise<StepResult> {
  return withCaLock(dir, () => rootRetireUnlocked(dir, options));
}

export function rotateTokenKey(dir: string, options: { now?: Date } = {}): Promise<StepResult> {
  return withCaLock(dir, () => rotateTokenKeyUnlocked(dir, options));
}

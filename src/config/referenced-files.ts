// `meshcar check` beyond the YAML: every file a valid config names must exist, be readable and
// hold what it should (certificates, a private key, a join token), so a mistake shows at check
// time with its file, line and key rather than when the sidecar starts. Reported as ordinary
// config issues at the key that names the file. A join token must also grant this config's
// service in its trust domain (read, not verified: check has no CA key), else the CA refuses it.

import { BoundedReadError, readBoundedText } from '../bounded-file.js';
import { MAX_PEM_FILE_BYTES } from '../identity/pem-files.js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { encryptedKeyProblem, pemBlocks } from '../pki/pem.js';
import { caBundleProblem } from '../pki/ca-bundle.js';
import { readTokenClaims } from '../identity/token-claims.js';
import { validateSvidSoon } from '../identity/svid.js';
import { tryParseSpiffeId } from '../identity/spiffe-id.js';
import { describeError } from '../errors.js';
import { fileErrorWords, tildeHint } from '../user-paths.js';
import { deniedHint } from '../permission-denied.js';
import { configFolderHint } from './config-folder.js';
import { writeTokenFix } from '../identity/missing-token.js';
import { DiskStore } from '../identity/disk-store.js';
import { remainingMs } from '../identity/svid.js';
import { pino } from 'pino';
import { caInitFix } from './ca-init-fix.js';
import { identityDirProblem } from './identity-dir-guard.js';
import { caTrustDomainProblem } from './ca-trust-domain.js';
import { requirePrivateCaFolder } from '../ca/ca-state.js';
import type { AnyConfig } from './load-any.js';
import type { SidecarConfig } from './sidecar-config.js';
import type { YamlValue } from './yaml-value.js';
import { oncePerSpec } from '../schema/once-per-spec.js';
import { firstRefusalInOrder } from '../first-refusal.js';

type Content = 'certificates' | 'ca bundle' | 'private key' | 'join token' | 'directory';

/**
 * Why `text` does not hold `content`, or undefined when it does; `grants`: the SPIFFE ID a join
 * token must be for; `needed`: the sidecar needs the token to start (no SVID stored yet), so
 * one that expired is refused too (check passed it, and run then failed with token_expired).
 */
export function contentProblem(text: string, content: Exclude<Content, 'directory'>, grants?: string, needed = false): string | undefined {
  if (content === 'join token') {
    const claims = readTokenClaims(text);
    if (typeof claims === 'string') return claims;
    if (grants !== undefined && claims.sub !== grants) return tokenMismatch(claims.sub, grants);
    if (needed && claims.expMs <= Date.now()) return `the join token expired at ${new Date(claims.expMs).toISOString()}, and identity.dir holds no valid SVID of this service to start on: the sidecar needs it to start, and the CA would refuse it (token_expired)`;
    return undefined;
  }
  const blocks = pemBlocks(text);
  if (content === 'private key') {
    const encrypted = encryptedKeyProblem(text);
    if (encrypted !== undefined) return encrypted;
    if (!blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) return 'it holds no PEM private key (-----BEGIN PRIVATE KEY-----)';
    try {
      createPrivateKey(text);
      return undefined;
    } catch (err) {
      return `its private key does not parse: ${describeError(err)}`;
    }
  }
  const certificates = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certificates.length === 0) return 'it holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  for (const [i, block] of certificates.entries()) {
    try {
      new X509Certificate(block.der);
    } catch (err) {
      return `certificate ${i + 1} does not parse: ${describeError(err)}`;
    }
  }
  // the roots the CA is trusted by: CA certificates only, as run requires
  return content === 'ca bundle' ? caBundleProblem(text) : undefined;
}

/** The CA issues only the SPIFFE ID the token grants: say which of service and trustDomain differ. */
function tokenMismatch(sub: string, expected: string): string {
  const theirs = tryParseSpiffeId(sub);
  const ours = tryParseSpiffeId(expected);
  const otherDomain = typeof theirs !== 'string' && typeof ours !== 'string' && theirs.trustDomain !== ours.trustDomain;
  const which = otherDomain ? `trust domain ${theirs.trustDomain}, not trustDomain ${ours.trustDomain}` : 'another service';
  return `the join token grants ${sub} (${which}), but service and trustDomain make this sidecar ${expected}; the CA would refuse its SVID request: write a token for ${expected} (meshcar ca token --dir <CA dir> --service NAME), or correct service/trustDomain`;
}


/**
 * Missing, and creatable as far as the path goes: only ENOENT. A path under a plain file
 * (ENOTDIR) can never be created, and the sidecar's mkdir of identity.dir fails at start.
 */
async function absent(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );
}

/**
 * Whether `run` would start on an SVID stored in `dir` for `spiffeId` without its join token:
 * as bootstrap.ts decides, one with any life left, more than a second, renewed with itself
 * when it is too near its end to serve (review: the default 10 % had check ask for a token in
 * an SVID's last tenth of life, which run does not need).
 */
async function startsOnStored(dir: string, spiffeId: string): Promise<{ starts: boolean; passedOver?: string }> {
  const store = new DiskStore(dir, pino({ enabled: false }));
  let passedOver: string | undefined;
  const stored = await store.load(spiffeId, { minRemainingFraction: 0, quiet: true, readOnly: true, passedOver: (why) => (passedOver = why) }).catch((err: unknown) => {
    passedOver = describeError(err);
    return undefined;
  });
  if (stored !== undefined && remainingMs(stored) <= 1000) passedOver = `it expires at ${stored.notAfter.toISOString()}`;
  return { starts: stored !== undefined && passedOver === undefined, passedOver };
}

/** Why the file a reference names is not usable, or undefined (a folder that may be made on first start may be absent). */
async function referenceProblem(ref: Reference): Promise<string | undefined> {
  // the kernel's file systems and a CA's folder are refused present or not (identity-dir-guard.ts)
  if (ref.keys.join('.') === 'identity.dir') {
    const problem = identityDirProblem(ref.path);
    if (problem !== undefined) return problem;
  }
  if (ref.mayBeAbsent && (await absent(ref.path))) return undefined;
  // a stored SVID that `run` would start on spares the token at start, so a token deleted after
  // the first start (as it may be) is no error then: refusing it failed a pre-flight check of a
  // config that runs. Judged as `run` judges it (DiskStore.load, nothing written): an expired
  // set, another service's, one without its key or in a folder others can write still needs it
  const stored = ref.storedIn !== undefined && ref.grants !== undefined ? await startsOnStored(ref.storedIn, ref.grants) : undefined;
  const needed = stored !== undefined && !stored.starts;
  if (ref.storedIn !== undefined && !needed && (await absent(ref.path))) return undefined;
  const problem = await fileProblem(ref.path, ref.content, ref.grants, needed);
  // the token is needed because what is stored was passed over: why, as `run` would log it
  return problem !== undefined && stored?.passedOver !== undefined ? `${problem} (the SVID stored in ${ref.storedIn} is not used: ${stored.passedOver})` : problem;
}

/** Why the file at `path` is not usable as `content`, or undefined. */
export async function fileProblem(path: string, content: Content, grants?: string, needed = false): Promise<string | undefined> {
  let kind: 'a file' | 'a directory' | 'a pipe' | 'a socket' | 'a device';
  try {
    const info = await stat(path);
    kind = info.isFile() ? 'a file' : info.isDirectory() ? 'a directory' : info.isFIFO() ? 'a pipe' : info.isSocket() ? 'a socket' : 'a device';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${path} does not exist (relative paths are resolved against the working directory, ${process.cwd()})${tildeHint(path)}`;
    if (code === 'ENOTDIR') return `${path} cannot be ${content === 'directory' ? 'created' : 'read'}: a part of its path is a file, not a directory`;
    // ELOOP and the like in words, not Node's text (EACCES keeps its hint below)
    const words = code === 'EACCES' ? undefined : fileErrorWords(err);
    return `cannot read ${path}: ${words ?? describeError(err)}${code === 'EACCES' ? deniedHint(path) : ''}`;
  }
  if (content === 'directory') return kind === 'a directory' ? undefined : `${path} is not a directory`;
  // (it said "is a other" for a device, a pipe or a socket)
  if (kind !== 'a file') return `${path} is ${kind}, not a file`;
  let text: string;
  try {
    // as `run` reads them (identity/pem-files.ts): a PEM file or token `check` passed must not
    // be one `run` refuses (it read up to 8 MiB here against run's 1 MiB)
    text = await readBoundedText(path, MAX_PEM_FILE_BYTES);
  } catch (err) {
    if (err instanceof BoundedReadError) return `${path} ${err.message}`;
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? `cannot read ${path}: permission denied${deniedHint(path)}` : `cannot read ${path}: ${describeError(err)}`;
  }
  const problem = contentProblem(text, content, grants, needed);
  return problem === undefined ? undefined : `${path}: ${problem}${needed && problem.startsWith('the join token expired') && grants !== undefined ? writeTokenFix(path, grants) : ''}`;
}

interface Reference {
  /** Key path from the top, e.g. ['identity', 'ca', 'bundle']. */
  readonly keys: readonly string[];
  readonly path: string;
  readonly content: Content;
  /** A directory that may be made on first start: only an existing non-directory is wrong. */
  readonly mayBeAbsent?: boolean;
  /** A join token: the SPIFFE ID it must grant. */
  readonly grants?: string;
  /** A join token: the identity.dir whose stored SVID, if any, makes the token unneeded at start. */
  readonly storedIn?: string;
  /** What to do when the path does not exist (and the config's folder does not hold it either). */
  readonly whenMissing?: string;
}

function referencesOf(loaded: AnyConfig): Reference[] {
  if (loaded.kind === 'ca') return [{ keys: ['dir'], path: loaded.config.dir, content: 'directory', whenMissing: caInitFix(loaded.config.dir, loaded.config.trustDomain) }];
  const { identity } = loaded.config;
  if (identity.source === 'files') {
    return [
      { keys: ['identity', 'files', 'cert'], path: identity.files.cert, content: 'certificates' },
      { keys: ['identity', 'files', 'key'], path: identity.files.key, content: 'private key' },
      { keys: ['identity', 'files', 'bundle'], path: identity.files.bundle, content: 'certificates' },
    ];
  }
  const refs: Reference[] = [
    { keys: ['identity', 'ca', 'bundle'], path: identity.ca.bundle, content: 'ca bundle' },
    { keys: ['identity', 'dir'], path: identity.dir, content: 'directory', mayBeAbsent: true },
  ];
  if (identity.ca.token !== undefined) refs.push({ keys: ['identity', 'ca', 'token'], path: identity.ca.token, content: 'join token', grants: loaded.config.spiffeId, storedIn: identity.dir, whenMissing: writeTokenFix(identity.ca.token, loaded.config.spiffeId) });
  return refs;
}

/** The OpenAPI specs a sidecar config names, with the key path naming each. */
function specsOf(loaded: AnyConfig): Array<{ keys: string[]; path: string }> {
  if (loaded.kind !== 'sidecar') return [];
  const specs: Array<{ keys: string[]; path: string }> = [];
  const inbound = loaded.config.inbound?.openapi;
  if (inbound) specs.push({ keys: ['inbound', 'openapi', 'spec'], path: inbound.spec });
  for (const upstream of loaded.config.outbound?.upstreams ?? []) {
    if (upstream.openapi) specs.push({ keys: ['outbound', 'upstreams', upstream.name, 'openapi', 'spec'], path: upstream.openapi.spec });
  }
  return specs;
}

/** Every file and folder a sidecar config names (identity files, the OpenAPI specs). */
export function referencedPaths(config: SidecarConfig): string[] {
  const loaded: AnyConfig = { kind: 'sidecar', config };
  return [...referencesOf(loaded).map((ref) => ref.path), ...specsOf(loaded).map((spec) => spec.path)];
}

/**
 * What is wrong with the identity files a sidecar config names (key path and problem), each
 * file alone and then identity.files as a set, as `check` tells them: a reload keeps the
 * running identity, so these only bite at the next start; the reload says so.
 */
export async function identityFileProblems(config: SidecarConfig): Promise<Array<{ key: string; problem: string }>> {
  const refs = referencesOf({ kind: 'sidecar', config });
  const problems = await Promise.all(refs.map(referenceProblem));
  const each = refs.flatMap((ref, i) => (problems[i] === undefined ? [] : [{ key: ref.keys.join('.'), problem: problems[i] as string }]));
  if (each.length > 0) return each;
  // identity.files that each read fine must also work together, as check tests them and run
  // takes them (a key of another certificate, another service's SVID, another CA's chain)
  const set = await filesSetProblem(config);
  return set === undefined ? [] : [{ key: 'identity.files.cert', problem: set.problem }];
}

/** Checks every file the config names; each problem becomes an issue at the key naming the file. */
export async function checkReferencedFiles(root: YamlValue, loaded: AnyConfig): Promise<void> {
  const refs = referencesOf(loaded);
  const problems = await Promise.all(refs.map(referenceProblem));
  // identity.files that each read fine must also work together, as run takes them
  const set = loaded.kind === 'sidecar' && problems.every((problem) => problem === undefined) ? await filesSetProblem(loaded.config) : undefined;
  // a CA folder that is there must be a CA of this config's trust domain, as ca serve requires
  const otherDomain = loaded.kind === 'ca' && problems[0] === undefined ? await caTrustDomainProblem(loaded.config.dir, loaded.config.trustDomain) : undefined;
  // and one only its user can write to, as ca serve requires (the kubelet's fsGroup pass, say, adds group write)
  const shared = loaded.kind === 'ca' && problems[0] === undefined ? await requirePrivateCaFolder(loaded.config.dir).then(() => undefined, (err: unknown) => describeError(err)) : undefined;
  // and one that holds a whole CA, read as `ca status` reads it (nothing written): an empty
  // folder, a missing issuer.key, a damaged state.json or token-keys.json passed check, and
  // ca serve refused it (the CA's modules are loaded only for a CA config)
  const broken = loaded.kind === 'ca' && problems[0] === undefined && otherDomain === undefined && shared === undefined ? await (await import('../ca/status.js')).caStatus(loaded.config.dir).then(() => undefined, (err: unknown) => describeError(err)) : undefined;
  // an OpenAPI spec is loaded as the sidecar would: parsed, validated, $refs resolved, compiled
  const specs = specsOf(loaded);
  // (the loader, swagger-parser and Ajv, is imported only when a spec is named)
  const loader = specs.length > 0 ? await import('../schema/spec.js') : undefined;
  // each file once, however many upstreams name it (once-per-spec.ts)
  const problemOf = oncePerSpec((path) => loader!.CompiledSpec.load(path).then(() => undefined, (err: unknown) => describeError(err)));
  const specProblems = await Promise.all(specs.map((spec) => problemOf(spec.path)));
  const all = [
    ...refs.map((ref, i) => ({ keys: ref.keys, path: ref.path, problem: problems[i], whenMissing: ref.whenMissing })),
    ...(set ? [{ keys: ['identity', 'files', 'cert'], path: set.path, problem: set.problem }] : []),
    ...(otherDomain && loaded.kind === 'ca' ? [{ keys: ['trustDomain'], path: loaded.config.dir, problem: otherDomain }] : []),
    ...(shared && loaded.kind === 'ca' ? [{ keys: ['dir'], path: loaded.config.dir, problem: shared }] : []),
    ...(broken && loaded.kind === 'ca' ? [{ keys: ['dir'], path: loaded.config.dir, problem: broken }] : []),
    ...specs.map((spec, i) => ({ keys: spec.keys, path: spec.path, problem: specProblems[i] })),
  ];
  for (const entry of all) {
    const { keys, path, problem } = entry;
    if (problem === undefined) continue;
    let hint = configFolderHint(loaded.config.file, path, { cwdTold: /working directory/.test(problem) });
    // a join token or CA folder that is nowhere (not beside the config either): the command that makes it
    const whenMissing = 'whenMissing' in entry ? entry.whenMissing : undefined;
    if (hint === '' && whenMissing !== undefined && problem.startsWith(`${path} does not exist`)) hint = whenMissing;
    let value: YamlValue | undefined = root;
    // the deepest key that is there (an upstream's name may be written in another case)
    // (in another case too: `Payments:` is the upstream payments, and its problem belongs there)
    for (const key of keys) value = value?.peek(key) ?? value?.peekAnyCase(key) ?? value;
    (value ?? root).report(`${problem}${hint}`);
  }
}

/**
 * Why the identity.files set would be refused by run though each file holds what it should: a
 * certificate from a CA the bundle does not hold, a key of another certificate, another
 * service's SPIFFE ID, an expired one (a set valid within run's wait for its start passes).
 */
async function filesSetProblem(config: SidecarConfig): Promise<{ path: string; problem: string } | undefined> {
  if (config.identity.source !== 'files') return undefined;
  const { cert, key, bundle } = config.identity.files;
  try {
    const [chainPem, privateKeyPem, bundlePem] = await firstRefusalInOrder([cert, key, bundle].map((file) => readBoundedText(file, MAX_PEM_FILE_BYTES)));
    validateSvidSoon({ chainPem: chainPem as string, privateKeyPem: privateKeyPem as string, bundlePem: bundlePem as string, paths: { chain: cert, bundle } }, config.spiffeId);
    return undefined;
  } catch (err) {
    return { path: cert, problem: `${cert} / ${key} / ${bundle}: ${describeError(err)} (run refuses this set)` };
  }
}

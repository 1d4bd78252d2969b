// The CA's command-line operations (init, offline issue, token, serve) as plain async
// functions; src/cli/main.ts parses arguments and prints, these do the work. The server and the
// metrics registry (prom-client) are imported by caServe only: init, issue and token do not
// load them.

import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { CaConfig } from '../config/ca-config.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { serviceSpiffeId } from '../identity/spiffe-id.js';
import type { Metrics } from '../metrics/registry.js';
import { Authority } from './authority.js';
import { initCaDirectory, loadCaMaterial } from './store.js';
import { writeFileAtomic } from '../atomic-file.js';
import { prepareOutFolder } from '../user-paths.js';
import { makeOutFolder } from './out-path.js';
import { TokenLedger } from './token-ledger.js';
import { TokenKeys } from './token-keys.js';
import { requireFinishedInit } from './ca-state.js';
import { withCaLock } from './folder-lock.js';
import { recordLeafNotAfterLocked, recordServerMaxTtl, ServerLeafLifetime } from './leaf-lifetime.js';
import type { RunningCaServer } from './server.js';
import type { CaConnectionLimits } from './connection-limits.js';
import type { CaRuntime } from './runtime.js';
import { DAY_MS } from '../config/duration.js';


export async function openAuthority(dir: string, limits: { maxTtlMs: number; defaultTtlMs: number }, trustDomain?: string): Promise<Authority> {
  // before TokenKeys.load, which would make token keys in a half-made folder
  await requireFinishedInit(dir);
  const [material, ledger, tokenKeys] = await Promise.all([loadCaMaterial(dir, trustDomain), TokenLedger.open(dir), TokenKeys.load(dir)]);
  return new Authority(material, ledger, limits, tokenKeys);
}

export async function caInit(dir: string, trustDomain: string, force: boolean): Promise<{ finished: boolean }> {
  return initCaDirectory(dir, trustDomain, { force });
}

/** Offline issuance: the key is made here and written next to the SVID. */
export async function caIssue(dir: string, service: string, typedOut: string, ttlMs: number): Promise<{ spiffeId: string; notAfter: string; serial: string }> {
  // `..` taken away as text first, as the judgement and the files' names take it (ca init's --dir
  // too): the kernel walks `x/../out` through x, missing until made (a re-review: certs/z made,
  // then "does not exist")
  const outDir = typedOut.split(/[\\/]/).includes('..') ? resolve(typedOut) : typedOut;
  const keys = await generateWorkloadKey();
  const spki = createPublicKey(createPrivateKey(keys.privateKeyPem)).export({ type: 'spki', format: 'der' });
  // signed and counted under the lock, before anything is written: a root rotation step either
  // sees this leaf's notAfter or has run wholly before it was signed
  const issued = await withCaLock(dir, async () => {
    // --out is made and found writable before the leaf is signed and recorded
    await prepareOutFolder(outDir, makeOutFolder);
    const authority = await openAuthority(dir, { maxTtlMs: Math.max(ttlMs, DAY_MS), defaultTtlMs: ttlMs });
    const leaf = await authority.issue(serviceSpiffeId(authority.trustDomain, service), spki, ttlMs);
    await recordLeafNotAfterLocked(dir, Date.parse(leaf.notAfter));
    return leaf;
  });
  await writeFileAtomic(join(outDir, 'svid.key'), keys.privateKeyPem, 0o600);
  await writeFileAtomic(join(outDir, 'svid.crt'), issued.chain, 0o644);
  await writeFileAtomic(join(outDir, 'bundle.pem'), issued.bundle, 0o644);
  return { spiffeId: issued.spiffeId, notAfter: issued.notAfter, serial: issued.serial };
}

export async function caToken(dir: string, service: string, ttlMs: number, singleUse: boolean): Promise<string> {
  // loaded under the lock, as any command that may write: a folder made before token keys gets
  // its first one here, and a crashed issuer switch is finished; outside the lock, this raced a
  // rotate-token-key or another token, and a token key could be written beside another's list
  const authority = await withCaLock(dir, () => openAuthority(dir, { maxTtlMs: DAY_MS, defaultTtlMs: DAY_MS }));
  return authority.createToken(serviceSpiffeId(authority.trustDomain, service), ttlMs, singleUse);
}

/**
 * Writes a token to a file only its owner can read (for `--out`): a new 0600 file renamed over
 * the path, so a symlink there is replaced rather than followed, and an existing file that
 * others may read never holds the token, not even for a moment.
 */
export async function writeTokenFile(path: string, token: string): Promise<void> {
  await writeFileAtomic(path, `${token}\n`, 0o600);
}

export async function caServe(config: CaConfig, logger: Logger, metrics?: Metrics, connectionLimits?: Partial<CaConnectionLimits>): Promise<RunningCaServer & { readonly ca: CaRuntime }> {
  const [{ startCaServer }, { CaRuntime }] = await Promise.all([import('./server.js'), import('./runtime.js')]);
  const registry = metrics ?? new (await import('../metrics/registry.js')).Metrics();
  // the CA exports its own families, the build info and the process's: a sidecar family would
  // be an empty `# TYPE` line here, and meshcar_identity_bundle_roots 0 from the CA would set
  // off the "sidecar bundle behind" alert
  for (const metric of registry.registry.getMetricsAsArray()) {
    const sidecarFamily = metric.name.startsWith('meshcar_') && !metric.name.startsWith('meshcar_ca_') && metric.name !== 'meshcar_build_info';
    if (sidecarFamily) registry.registry.removeSingleMetric(metric.name);
  }
  const ca = await CaRuntime.open({
    dir: config.dir,
    trustDomain: config.trustDomain,
    limits: { maxTtlMs: config.maxTtlMs, defaultTtlMs: config.defaultTtlMs },
    metrics: registry,
    logger,
    ...(config.issuerRotation ? { issuerRotation: config.issuerRotation } : {}),
  });
  // the root rotation steps wait for leaves of this lifetime to expire (and for those of the
  // server before it, if they live longer)
  await recordServerMaxTtl(config.dir, config.maxTtlMs).catch((err: unknown) => {
    // a read-only CA folder still serves; only the rotation commands lose the figure
    logger.warn(`could not record maxTtl in ${config.dir} for the root rotation steps (they will assume the longest recorded lifetime, or 24h): ${(err as Error).message}`);
  });
  const server = await startCaServer({
    ca,
    host: config.listen.host,
    port: config.listen.port,
    serverNames: config.serverNames,
    rateLimit: config.rateLimit,
    metrics: registry,
    logger,
    ...(connectionLimits ? { connectionLimits } : {}),
    leafLifetime: new ServerLeafLifetime(config.dir, config.maxTtlMs, logger),
  });
  return {
    ...server,
    ca,
    close: async () => {
      await ca.close();
      await server.close();
    },
  };
}

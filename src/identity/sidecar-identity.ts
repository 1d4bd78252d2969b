// The workload identity as the composition root runs it: brought up from the config's identity
// section (the meshcar CA, or files managed elsewhere), its certificate and renewals shown as
// metrics, and the admin's view of it (GET /identity, with why renewals fail while they do, and
// while it starts, why the first SVID has not come yet).

import type { Logger } from 'pino';
import type { IdentityConfig } from '../config/identity-config.js';
import type { Metrics } from '../metrics/registry.js';
import { identityFromFiles, obtainIdentity, type RunningIdentity } from './bootstrap.js';
import { rootCount, type Svid } from './svid.js';
import { describeError } from '../errors.js';
import type { WorkloadIdentity } from './workload-identity.js';

/** Renewals (or, with files, reads of the files) failed since the last success: for /identity. */
interface RenewalTrouble {
  readonly failures: number;
  /** The first failure of the run (ISO). */
  readonly since: string;
  readonly lastError: string;
}
const troubles = new WeakMap<WorkloadIdentity, RenewalTrouble>();

/** One more failure after `before` (none: the first, now). */
function oneMore(before: RenewalTrouble | undefined, err: unknown): RenewalTrouble {
  return { failures: (before?.failures ?? 0) + 1, since: before?.since ?? new Date().toISOString(), lastError: describeError(err) };
}

/**
 * The requests for the first SVID while the sidecar starts (the CA out of reach: retried until
 * identity.ca's startup wait ends). /identity shows them as it shows failing renewals, so
 * `status: starting` comes with why, not only in the log.
 */
export class IdentityStart {
  trouble: RenewalTrouble | undefined;
  readonly failed = (err: unknown): void => void (this.trouble = oneMore(this.trouble, err));
}

/**
 * Brings the identity up from the config's `identity` section, for `spiffeId` of `trustDomain`;
 * failed SVID saves count in `metrics`; `signal` ends a wait for the CA (the sidecar stops).
 */
export function startIdentity(identity: IdentityConfig, spiffeId: string, trustDomain: string, logger: Logger, metrics?: Metrics, signal?: AbortSignal, start?: IdentityStart): Promise<RunningIdentity> {
  if (identity.source === 'files') return identityFromFiles({ spiffeId, files: identity.files, logger });
  return obtainIdentity({
    spiffeId,
    trustDomain,
    dir: identity.dir,
    ca: { url: identity.ca.url, bundlePath: identity.ca.bundle, tokenPath: identity.ca.token, bundleRefreshMs: identity.ca.bundleRefreshMs },
    ttlMs: identity.ttlMs,
    renewal: identity.renewal,
    // counted from the first save on, before the identity (and watchIdentityMetrics) exists
    ...(metrics ? { onPersistFailure: () => metrics.identityPersistFailures.inc() } : {}),
    logger,
    ...(signal ? { signal } : {}),
    ...(start ? { onFirstRequestFailed: start.failed } : {}),
  });
}

/**
 * The SVID's expiry (when peers stop accepting it: its chain may end before its leaf) and the
 * bundle's root count follow every rotation; each renewal is
 * counted by result, and the failures since the last success are kept for /identity (a log
 * line and a counter say that renewals fail; an operator at the admin port sees why too).
 */
export function watchIdentityMetrics(metrics: Metrics, running: RunningIdentity): void {
  const { identityCertExpiry, identityRenewals, identityBundleRoots } = metrics;
  const expiry = identityCertExpiry.labels(running.identity.spiffeId);
  const show = (svid: Svid) => {
    expiry.set(svid.notAfter.getTime() / 1000);
    identityBundleRoots.set(rootCount(svid));
  };
  show(running.identity.current());
  metrics.identityShown = true;
  running.identity.on('rotated', show);
  // both results at 0 from the start: a series born at 1 has no increase to Prometheus, so an
  // alert on increase(...{result="failure"}) would miss the first failed renewal
  for (const result of ['success', 'failure']) identityRenewals.labels(result).inc(0);
  running.identity.on('renewal', (event) => {
    identityRenewals.labels(event.result).inc();
    const { identity } = running;
    if (event.result === 'success') troubles.delete(identity);
    else troubles.set(identity, oneMore(troubles.get(identity), event.error));
  });
}

/** GET /identity: the SVID in use, or `starting` until there is one (with the failed requests for it so far). */
export function identityView(running: RunningIdentity | undefined, spiffeId: string, source: IdentityConfig['source'], start?: IdentityStart): Record<string, unknown> {
  if (!running) return { spiffeId, status: 'starting', renewalFailing: start?.trouble ?? null };
  const svid = running.identity.current();
  return {
    spiffeId: svid.spiffeId,
    serial: svid.serialHex,
    notBefore: svid.notBefore.toISOString(),
    // when peers stop accepting it (the chain may end before the leaf), then the leaf's own end
    notAfter: svid.notAfter.toISOString(),
    leafNotAfter: svid.leafNotAfter.toISOString(),
    nextRenewal: running.nextRenewalAt()?.toISOString() ?? null,
    source,
    renewalFailing: troubles.get(running.identity) ?? null,
  };
}

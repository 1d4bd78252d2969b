// Keeps the workload's trust bundle current between renewals: polls the CA's GET /v1/bundle
// (identity.ca.bundleRefresh, default 5m) and, when the roots changed, swaps in the same key and
// chain with the new bundle. The swap is the identity's ordinary rotation: servers take it for
// new handshakes, open connections keep going. Renewal responses carry the bundle too; this is
// for a root added or retired between two renewals, and for a sidecar coming back after one
// (bootstrap runs it once before any listener opens). A bundle the current leaf does not chain
// to (its root was retired) is not swapped in: it asks for a renewal instead.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { splitPemCertificates } from '../pki/pem.js';
import type { CaClient } from './ca-client.js';
import { rootCount, validateSvidSoon, type Svid } from './svid.js';
import type { WorkloadIdentity } from './workload-identity.js';
import { MAX_TIMER_MS } from '../timer-clear.js';

export const DEFAULT_BUNDLE_REFRESH_MS = 5 * 60_000;


/** The set of roots, order and PEM formatting aside. */
function rootsKey(bundlePem: string): string {
  return splitPemCertificates(bundlePem)
    .map((pem) => createHash('sha256').update(pem.replace(/\s+/g, '')).digest('hex'))
    .sort()
    .join(',');
}

export type BundleOutcome =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'changed'; readonly svid: Svid }
  /** The current leaf does not chain to the new bundle: only a new certificate helps. */
  | { readonly kind: 'leaf_untrusted'; readonly reason: string };

/** What `bundlePem` means for `svid`: nothing new, the same SVID with the new bundle, or a leaf to replace. */
export function applyBundle(svid: Svid, bundlePem: string): BundleOutcome {
  if (rootsKey(bundlePem) === rootsKey(svid.bundlePem)) return { kind: 'unchanged' };
  try {
    // Soon: a stored SVID that starts in a moment (a CA clock ahead) is no less trusted for it
    return { kind: 'changed', svid: validateSvidSoon({ privateKeyPem: svid.privateKeyPem, chainPem: svid.chainPem, bundlePem }, svid.spiffeId) };
  } catch (err) {
    return { kind: 'leaf_untrusted', reason: describeError(err) };
  }
}

export interface BundleRefreshOptions {
  readonly identity: WorkloadIdentity;
  readonly client: CaClient;
  readonly intervalMs: number;
  /** Stores the rebundled SVID, so a restart starts from the new bundle. */
  readonly persist: (svid: Svid) => Promise<void>;
  /** Called when the current leaf no longer chains to the CA's bundle. */
  readonly renewNow: () => void;
  /** True while a renewal holds a new SVID not swapped in yet (Renewal.holdsNewer): this poll then changes nothing. */
  readonly renewalHoldsNewer?: () => boolean;
  readonly logger: Logger;
}

export class BundleRefresh {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** The last poll's warning: said again at debug while polls keep failing the same way (a poll every second said it every second). */
  private lastWarning: string | undefined;

  constructor(private readonly options: BundleRefreshOptions) {}

  private said(message: string): void {
    const { logger } = this.options;
    if (message === this.lastWarning) logger.debug(message);
    else logger.warn(message);
    this.lastWarning = message;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    // ±10 %: a fleet started together does not poll together. Capped at what a timer holds:
    // bundleRefresh may be 24d, and 10 % more (26.4 days) is past 2^31-1 ms, which Node turns
    // into 1 ms: a third of the waits ended at once, a poll then another
    const delay = Math.min(MAX_TIMER_MS, this.options.intervalMs * (0.9 + 0.2 * Math.random()));
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** One poll: fetch, compare, swap or ask for a renewal. Never throws. */
  async refresh(): Promise<void> {
    const { identity, client, logger } = this.options;
    let bundlePem: string;
    const asked = identity.current();
    try {
      bundlePem = await client.fetchBundle(asked.bundlePem);
    } catch (err) {
      // stopped meanwhile: the poll was cut by the sidecar's own stop (its abort signal), not the CA
      if (!this.stopped) this.said(`could not fetch the CA's trust bundle, keeping the current one: ${describeError(err)}`);
      return;
    }
    // a renewal landed while the answer was on its way: its bundle is at least as new as this one
    // (the older answer would put the roots back as they were, on disk too)
    if (this.stopped || identity.current() !== asked) return;
    // a renewal has its new SVID and is saving it (or waiting for its start): that one carries the
    // CA's bundle; the current one rebundled and saved after it would leave the older leaf on disk
    if (this.options.renewalHoldsNewer?.()) return;
    // read and swap with no await in between: a renewal landing meanwhile is not undone
    const outcome = applyBundle(identity.current(), bundlePem);
    // the CA answered: a failure to fetch said before is over
    if (outcome.kind !== 'leaf_untrusted') this.lastWarning = undefined;
    if (outcome.kind === 'unchanged') return;
    if (outcome.kind === 'leaf_untrusted') {
      this.said(`the CA's trust bundle no longer covers the current certificate (${outcome.reason}); renewing now`);
      this.options.renewNow();
      return;
    }
    // new handshakes trust the new roots at once; stored after, unless a renewal (which stores
    // its own certificate) has replaced this one in the meantime
    identity.swap(outcome.svid);
    logger.info({ roots: rootCount(outcome.svid) }, 'trust bundle updated from the CA');
    if (identity.current() !== outcome.svid) return;
    await this.options.persist(outcome.svid).catch((err: unknown) => logger.warn(`could not store the new trust bundle: ${describeError(err)}`));
  }
}

/** How long a starting sidecar waits for the CA's bundle before it goes on with the one it has. */
const STARTUP_FETCH_MS = 5_000;

/**
 * A stored SVID's bundle may be older than the CA's (the sidecar was down during a root
 * rotation): fetched once before any listener opens, so the first peers are checked against
 * the roots of now. Returns the SVID to start with, or undefined when its leaf is no longer
 * trusted (its root was retired) and a new one must be requested.
 */
export async function bundleBeforeStart(svid: Svid, client: CaClient, persist: (svid: Svid) => Promise<void>, logger: Logger): Promise<Svid | undefined> {
  let bundlePem: string;
  let timer: NodeJS.Timeout | undefined;
  try {
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${STARTUP_FETCH_MS} ms`)), STARTUP_FETCH_MS);
    });
    bundlePem = await Promise.race([client.fetchBundle(svid.bundlePem), late]);
  } catch (err) {
    logger.warn(`could not fetch the CA's trust bundle at start, going on with the stored one: ${describeError(err)}`);
    return svid;
  } finally {
    clearTimeout(timer);
  }
  const outcome = applyBundle(svid, bundlePem);
  if (outcome.kind === 'unchanged') return svid;
  if (outcome.kind === 'leaf_untrusted') {
    logger.warn(`the stored SVID is no longer trusted by the CA's bundle (${outcome.reason}); requesting a new one`);
    return undefined;
  }
  logger.info({ roots: rootCount(outcome.svid) }, 'trust bundle updated from the CA before start');
  await persist(outcome.svid).catch((err: unknown) => logger.warn(`could not store the new trust bundle: ${describeError(err)}`));
  return outcome.svid;
}

// Brings a workload identity up from configuration: from the CA (reuse the SVID on disk while
// valid and still trusted by the CA's bundle, else spend the join token; then keep renewing and
// keep the bundle current; one that starts a little in the future, from a CA whose clock is
// ahead, is stored at once and served from its start) or from watched files. The one entry
// point the composition root needs; each returns a running identity and a way to stop it.

import { readBoundedText } from '../bounded-file.js';
import { MAX_PEM_FILE_BYTES } from './pem-files.js';
import type { Logger } from 'pino';
import { readTokenClaims } from './token-claims.js';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import { CaClient, CaRefusedError } from './ca-client.js';
import { BundleRefresh, bundleBeforeStart, DEFAULT_BUNDLE_REFRESH_MS } from './bundle-refresh.js';
import { DiskStore } from './disk-store.js';
import { FilesWatcher, loadSvidFiles, warnIfChainEndsFirst, type IdentityFiles } from './files-source.js';
import { backoffDelayMs, Renewal, type BackoffPolicy, type RenewalWindow } from './renewal.js';
import { remainingMs, type Svid } from './svid.js';
import { WorkloadIdentity } from './workload-identity.js';
import { SvidSaver } from './svid-saver.js';
import { untilServable, warnNotYetValid } from './valid-soon.js';
import { shellWord } from '../shell-word.js';
import { writeTokenFix } from './missing-token.js';
import { caGaveUp } from './ca-gave-up.js';
import { fileErrorWords } from '../user-paths.js';
import { caBundleProblem } from '../pki/ca-bundle.js';
import { LogPerKey, leftOut, leftOutFields } from '../log-per-key.js';

export interface RunningIdentity {
  readonly identity: WorkloadIdentity;
  /** Next scheduled renewal; undefined for files (renewed by whoever writes them). */
  nextRenewalAt(): Date | undefined;
  stop(): void;
}

export interface CaIdentityOptions {
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** identity.dir: where the key and SVID persist across restarts. */
  readonly dir: string;
  readonly ca: { readonly url: string; readonly bundlePath: string; readonly tokenPath?: string | undefined; readonly timeoutMs?: number; readonly bundleRefreshMs?: number };
  readonly ttlMs?: number;
  readonly renewal?: RenewalWindow;
  readonly backoff?: BackoffPolicy;
  /** Test hook: one warning per this window while the first request keeps failing alike (RETRY_WARNING_WINDOW_MS). */
  readonly retryWarningWindowMs?: number;
  /** How long the first issuance keeps retrying an unreachable CA (e.g. started alongside); default 30 s. */
  readonly startupTimeoutMs?: number;
  /** Each failed request for the first SVID (while the CA is out of reach): /identity says why it is not ready. */
  readonly onFirstRequestFailed?: (err: unknown) => void;
  /** Each failed save of an SVID under `dir` (retries included): the sidecar counts them. */
  readonly onPersistFailure?: (err: unknown) => void;
  readonly logger: Logger;
  /** Aborted when the sidecar stops: the first issuance stops retrying, a CA request under way ends. */
  readonly signal?: AbortSignal;
}

/** `key` is the config key that names the file, so the message says what to mend and where. */
async function readConfigFile(file: string, key: string, what: string): Promise<string> {
  try {
    return await readBoundedText(file, MAX_PEM_FILE_BYTES);
  } catch (err) {
    throw new MeshcarError('identity_invalid', `${key}: cannot read the ${what} ${file}: ${describeError(err)}`, { cause: err });
  }
}

/**
 * The CA's refusals of a join token itself: a new token is the fix, whatever the CA said. At a
 * first start identity_not_allowed is one too: the sidecar's own CSR asks for its SPIFFE ID alone,
 * so the CA refuses it only for a token granting another service's (a token file mixed up).
 */
const TOKEN_REFUSALS = new Set(['bad_token', 'token_expired', 'token_used', 'identity_not_allowed']);

/**
 * A refusal of the token with the file it came from and how to replace it: the CA knows nothing
 * of the file, and a newcomer with several token files could not tell which one was read.
 */
function tokenRefusal(err: unknown, tokenPath: string, url: string, spiffeId: string): unknown {
  if (!(err instanceof CaRefusedError) || !TOKEN_REFUSALS.has(err.caError)) return err;
  const service = spiffeId.slice(spiffeId.lastIndexOf('/') + 1);
  // another service's token in the file (a mix-up): writing ours over it would take that
  // service's token away, if the file is its own
  const fix =
    err.caError === 'identity_not_allowed'
      ? `; the token is identity.ca.token's ${tokenPath}, another service's: point identity.ca.token at the token made for ${service}, or make one in a file of its own with the CA that serves ${url} (meshcar ca token --dir CA_DIR --service ${service} --out ${service}.token) and point identity.ca.token there`
      : `; the token is identity.ca.token's ${tokenPath}: write a new one there with the CA that serves ${url} (meshcar ca token --dir CA_DIR --service ${service} --out ${shellWord(tokenPath)})`;
  return new CaRefusedError(err.status, err.caError, `${err.message}${fix}`, err.retryAfterSeconds);
}

/** Resolves after `ms`, or rejects with the signal's reason once it is aborted. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One warning per this window while the first SVID request keeps failing alike (the rest are debug lines). */
export const RETRY_WARNING_WINDOW_MS = 10_000;

/**
 * Waiting for a CA that is not up yet (started alongside, or restarting): retries stay short so
 * the sidecar is ready within about a second of the CA, not at the end of a long backoff step.
 * One CSR a second from a starting sidecar costs the CA nothing.
 */
export const FIRST_CONTACT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 250, capMs: 1000 });

export async function obtainIdentity(options: CaIdentityOptions): Promise<RunningIdentity> {
  const { spiffeId, logger } = options;
  const store = new DiskStore(options.dir, logger);
  const bundlePem = await readConfigFile(options.ca.bundlePath, 'identity.ca.bundle', 'CA bundle');
  const bundleProblem = caBundleProblem(bundlePem);
  if (bundleProblem !== undefined) throw new MeshcarError('identity_invalid', `identity.ca.bundle: ${options.ca.bundlePath}: ${bundleProblem}`);
  const client = new CaClient({
    url: options.ca.url,
    trustDomain: options.trustDomain,
    bundlePem,
    logger,
    ...(options.ca.timeoutMs === undefined ? {} : { timeoutMs: options.ca.timeoutMs }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const ttl = options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs };

  const withToken = async (): Promise<Svid> => {
    // read when needed, not at start: it is only needed without a usable SVID, and may be rotated
    const tokenPath = options.ca.tokenPath;
    if (tokenPath === undefined) {
      throw new MeshcarError('identity_invalid', `no valid SVID in ${options.dir} and no join token configured: set identity.ca.token to a file holding one (meshcar ca token)`);
    }
    const token = (
      await readConfigFile(tokenPath, 'identity.ca.token', 'join token file').catch((err: MeshcarError) => {
        const missing = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
        if (!missing) throw err;
        // (`fix`: a start run from another folder is told where to run from instead, config-folder.ts)
        const fix = writeTokenFix(tokenPath, spiffeId);
        throw Object.assign(new MeshcarError(err.code, `${err.message}${fix}`, { cause: err.cause }), { fix });
      })
    ).trim();
    if (token === '') throw new MeshcarError('identity_invalid', `identity.ca.token: the join token file ${tokenPath} is empty`);
    // what `meshcar check` says of the file, before the token goes into a header: a character a
    // header cannot carry (a pasted zero-width space, two tokens on two lines) threw from inside
    // the request, and the start ended with exit 70 and a stack trace
    const problem = readTokenClaims(token);
    if (typeof problem === 'string') throw new MeshcarError('identity_invalid', `identity.ca.token: the join token file ${tokenPath}: ${problem}`);
    // a single-use token is not spent on an SVID that cannot be stored: the next start would
    // need a new one (a review: an identity.dir that was a file got an SVID, failed every save,
    // and once mended the start was refused token_used). A reusable one may be: the SVID serves
    // while its save is retried (a full disk at a first start)
    if (problem.single) {
      await store.prepare().catch((err: unknown) => {
        throw new MeshcarError('identity_invalid', `identity.dir: ${storeProblem(err, options.dir)}; the single-use join token was not sent, so it is not spent`, { cause: err });
      });
    }
    return client.sign({ spiffeId, auth: { token }, ...ttl }).catch((err: unknown) => {
      throw tokenRefusal(err, tokenPath, options.ca.url, spiffeId);
    });
  };
  // renewal authenticates with the current SVID; once that has expired, or the CA no longer
  // trusts it (its root was retired while this sidecar was away), only a token can help
  const obtain = async (current: Svid): Promise<Svid> => {
    if (remainingMs(current) <= 1000) return withToken();
    try {
      return await client.sign({ spiffeId, auth: { svid: current }, ...ttl });
    } catch (err) {
      // unauthenticated: a CA of an earlier version, which takes no SVID proof (mixed versions)
      if (!(err instanceof CaRefusedError && (err.caError === 'bad_svid' || err.caError === 'unauthenticated'))) throw err;
      // no token to fall back on: the CA's own refusal says why, where "no join token configured"
      // would blame the SVID, which is valid (a re-review)
      if (options.ca.tokenPath === undefined) throw err;
      logger.warn(`the CA no longer accepts the current SVID (${err.message}); using the join token`);
      return withToken();
    }
  };

  // first issuance, renewal and bundle refresh all store: one save at a time (the store has a
  // single writer); one that fails is counted, logged and tried again until it lands
  const saver = new SvidSaver({ store, logger, ...(options.onPersistFailure ? { onFailure: options.onPersistFailure } : {}) });
  const persist = (next: Svid): Promise<void> => saver.save(next).then(() => undefined);
  let svid = await store.load(spiffeId);
  // usable as stored (then possibly refused by the CA's bundle below: not one to renew with)
  const reusable = svid !== undefined;
  if (svid) {
    logger.info({ serial: svid.serialHex, notAfter: svid.notAfter.toISOString() }, 'reusing the SVID stored on disk');
    // roots may have changed while this sidecar was down: learn them before checking any peer
    svid = await bundleBeforeStart(svid, client, persist, logger);
  }
  if (!svid) {
    // one still valid but too close to its end to serve without asking: renewed with it (its
    // proof), as the renewal loop would have (a join token is often spent or expired by then: a
    // restart after a CA outage of a few hours would otherwise need a new one)
    // (the first load has said why no set is used as stored: this one says nothing more)
    const nearEnd = reusable ? undefined : await store.load(spiffeId, { minRemainingFraction: 0, quiet: true });
    const asking = Date.now();
    svid = await firstIssuance(nearEnd ? () => obtain(nearEnd) : withToken, options).catch((err: unknown) => {
      // the CA out of reach (or saying "not now" all along): the stored one serves while it lasts, and the renewal loop retries
      if (nearEnd === undefined || !isMeshcarError(err) || !(err.code === 'ca_unreachable' || notNow(err)) || remainingMs(nearEnd) <= 1000) {
        // the start ends here: say that it waited, and what to do
        throw isMeshcarError(err) && err.code === 'ca_unreachable' ? caGaveUp(err, Date.now() - asking) : err;
      }
      logger.warn({ serial: nearEnd.serialHex, notAfter: nearEnd.notAfter.toISOString() }, `the CA is out of reach (${describeError(err)}); starting with the stored SVID, which expires soon`);
      return nearEnd;
    });
    if (svid !== nearEnd) {
      await persist(svid);
      logger.info({ serial: svid.serialHex, notAfter: svid.notAfter.toISOString() }, nearEnd ? 'SVID renewed by the CA with the stored one' : 'SVID issued by the CA');
    }
  }
  if (svid.validFrom.getTime() > Date.now()) {
    // from a CA whose clock is ahead (now, or at the start that stored it): on disk already,
    // so the join token it cost is not lost; the listeners open once peers will accept it
    warnNotYetValid(logger, svid, 'no listener opens');
    await untilServable(svid, options.signal);
  }

  const identity = new WorkloadIdentity(svid, logger);
  const renewal = new Renewal({
    identity,
    obtain,
    persist,
    logger,
    ...(options.renewal ? { window: options.renewal } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
  });
  const bundles = new BundleRefresh({ identity, client, intervalMs: options.ca.bundleRefreshMs ?? DEFAULT_BUNDLE_REFRESH_MS, persist, renewNow: () => renewal.renewNow(), renewalHoldsNewer: () => renewal.holdsNewer, logger });
  renewal.start();
  bundles.start();
  return {
    identity,
    nextRenewalAt: () => renewal.nextRenewalAt,
    stop: () => {
      renewal.stop();
      bundles.stop();
      saver.stop();
    },
  };
}

/**
 * A CA answer that says "not now" rather than "no": its rate limit (429: a fleet starting
 * together on one host, or behind one NAT address, shares one bucket), or a proxy in front of
 * a CA that is not ready (502, 503, 504). Final at first contact, every sidecar past the CA's
 * burst exited at once; renewals always retried them. A 500 is not among them: the CA's own
 * failure (an expired issuer) comes after a single-use token was spent, and a retry would
 * hide it behind "token_used".
 */
function notNow(err: unknown): err is CaRefusedError {
  return err instanceof CaRefusedError && [429, 502, 503, 504].includes(err.status);
}

/**
 * Retries an unreachable CA (it may be starting too) and a CA that answers "not now" (notNow,
 * its Retry-After waited); a refusal of the request or a mismatch (ca_mismatch) is final and clear.
 */
async function firstIssuance(request: () => Promise<Svid>, options: CaIdentityOptions): Promise<Svid> {
  const deadline = Date.now() + (options.startupTimeoutMs ?? 30_000);
  // Retries are at most a second apart, so a CA that stays down for the start-up wait made ~60
  // warn lines of the same words. A warning when the failure is new or its words change, and
  // then once per window saying how many were left out; each retry still has its debug line.
  const warnings = new LogPerKey(options.retryWarningWindowMs ?? RETRY_WARNING_WINDOW_MS, 16, 16);
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      // stopped while waiting for the CA: no retry, no warning
      if (options.signal?.aborted) throw options.signal.reason;
      options.onFirstRequestFailed?.(err);
      let delay = backoffDelayMs(attempt, options.backoff ?? FIRST_CONTACT_BACKOFF);
      // the jittered step on top of the CA's Retry-After: the sidecars it turned away together
      // (same whole second) come back spread, not as one burst; one past the start-up wait
      // ends it now, with the CA's answer (below)
      if (notNow(err) && err.retryAfterSeconds !== undefined) delay += err.retryAfterSeconds * 1000;
      const retried = isMeshcarError(err) && (err.code === 'ca_unreachable' || notNow(err));
      if (!retried || Date.now() + delay > deadline) throw err;
      const words = describeError(err);
      const through = warnings.take(words);
      const line = `first SVID request failed, retrying: ${words}`;
      if (through === undefined) options.logger.debug({ retryInMs: delay, attempt: attempt + 1 }, line);
      else options.logger.warn({ retryInMs: delay, attempt: attempt + 1, ...leftOutFields(through) }, line + leftOut(through, 'failed alike'));
      await sleep(delay, options.signal);
    }
  }
}

export interface FilesIdentityOptions {
  readonly spiffeId: string;
  readonly files: IdentityFiles;
  readonly debounceMs?: number;
  /** Test hook (FilesWatchOptions.followLinks). */
  readonly followLinks?: boolean;
  readonly logger: Logger;
}

export async function identityFromFiles(options: FilesIdentityOptions): Promise<RunningIdentity> {
  const svid = await loadSvidFiles(options.files, options.spiffeId);
  warnIfChainEndsFirst(svid, options.files, options.logger);
  const identity = new WorkloadIdentity(svid, options.logger);
  const watcher = new FilesWatcher({
    files: options.files,
    identity,
    logger: options.logger,
    ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
    ...(options.followLinks === undefined ? {} : { followLinks: options.followLinks }),
  });
  return { identity, nextRenewalAt: () => undefined, stop: () => watcher.close() };
}

/** Why the store folder cannot hold an SVID, in words (a file-system error without Node's code and text; where, when not the folder itself). */
function storeProblem(err: unknown, dir: string): string {
  const words = fileErrorWords(err);
  if (words === undefined) return `${dir} cannot hold the SVID: ${describeError(err)}`;
  const at = (err as NodeJS.ErrnoException).path;
  return `${dir} cannot hold the SVID: ${at !== undefined && at !== dir && !at.includes('.write-check-') ? `${at}: ` : ''}${words}`;
}

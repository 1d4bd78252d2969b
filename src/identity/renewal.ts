// Renews the SVID before it expires: at a random point in a window of its lifetime (so a fleet
// started together does not renew together), retrying with exponential backoff and full jitter
// while the current SVID keeps serving, persisting and swapping in each new one. A new one that
// starts in the future (the CA's clock ahead) is stored at once and swapped in when it starts.

import type { Logger } from 'pino';
import { describeError, isMeshcarError } from '../errors.js';
import { lifetimeMs, type Svid } from './svid.js';
import type { WorkloadIdentity } from './workload-identity.js';
import { servableAtMs, warnNotYetValid } from './valid-soon.js';
import { ClockWatch, CLOCK_JUMP_MS, clockJumpMessage, WallClockTimer } from '../wall-clock-timer.js';

export interface RenewalWindow {
  /** Fractions of the lifetime (notBefore → notAfter); default 0.5 to 0.7. */
  readonly from: number;
  readonly to: number;
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_WINDOW: RenewalWindow = Object.freeze({ from: 0.5, to: 0.7 });
/**
 * The swap waits this long for the new SVID's save. A save that never ends (a hung network
 * filesystem, a stalled disk) must not hold the new certificate back until the one serving
 * expires; the save carries on, and is retried, without it.
 */
export const PERSIST_WAIT_MS = 10_000;
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, capMs: 30_000 });

/** Never spin: even a zero draw of the jitter waits this long. */
const MIN_RETRY_MS = 10;
/** The least wait after a renewal whose SVID arrived with its renewal time past (see afterStale). */
export const MIN_STALE_RENEWAL_MS = 1_000;

export interface RenewalOptions {
  readonly identity: WorkloadIdentity;
  /** Gets a new validated SVID, e.g. from the CA with `current` proven on the connection. */
  readonly obtain: (current: Svid) => Promise<Svid>;
  /** Stores the new SVID before it is swapped in (the swap goes ahead whatever the outcome: bootstrap's retries failed saves). */
  readonly persist?: (svid: Svid) => Promise<void>;
  /** How long the swap waits for `persist` before going ahead (the save carries on); default PERSIST_WAIT_MS. */
  readonly persistWaitMs?: number;
  readonly window?: RenewalWindow;
  readonly backoff?: BackoffPolicy;
  readonly logger: Logger;
  /** Defaults to Math.random; tests make jitter deterministic with it. */
  readonly random?: () => number;
  /** How often the wall clock is looked at (a watch of its own); default the process's, every CLOCK_CHECK_MS. */
  readonly clockCheckMs?: number;
}

/** When to renew `svid`: uniformly within the window of its lifetime. */
export function renewalTime(svid: Svid, window: RenewalWindow = DEFAULT_WINDOW, random: () => number = Math.random): Date {
  const fraction = window.from + (window.to - window.from) * random();
  return new Date(svid.notBefore.getTime() + lifetimeMs(svid) * fraction);
}

/** Full jitter (AWS architecture blog): uniform in [0, min(cap, base · 2^attempt)]. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(MIN_RETRY_MS, Math.floor(ceiling * random()));
}

/** The last moment a retry is still useful: shortly before expiry, scaled for short lifetimes. */
export function retryDeadline(svid: Svid): number {
  return svid.notAfter.getTime() - Math.min(30_000, lifetimeMs(svid) * 0.05);
}

/**
 * How long before its arrival an SVID may start with the CA's clock and ours agreeing: our CA
 * backdates a leaf by a tenth of the lifetime asked for, at most a minute (ca/x509-profile.ts's
 * backdateMs; of the leaf's whole lifetime, that is at most 1/11), writes its notBefore to the
 * whole second (up to 1 s earlier), and the CSR takes its round trip. Beyond this, the CA's
 * clock is behind ours.
 */
function backdatedAgeMs(svidLifetimeMs: number): number {
  return Math.min(60_000, svidLifetimeMs / 11) + 2_000;
}

export class Renewal {
  private readonly options: RenewalOptions;
  private readonly window: RenewalWindow;
  private readonly backoff: BackoffPolicy;
  /**
   * A trust-domain mismatch was logged (at error) since the last success: while the current SVID
   * was still valid, or once it had expired (said again then: the first line's "still serving"
   * no longer holds).
   */
  private mismatchReported: 'no' | 'while valid' | 'once expired' = 'no';
  /** An SVID arriving already due for renewal was logged (at warn) since the last that did not. */
  private staleReported = false;
  private readonly random: () => number;
  private readonly timer: WallClockTimer;
  private dueAt: number | undefined;
  private failures = 0;
  private running = false;
  /** A new SVID obtained and not swapped in yet (being saved, or waiting for its start). */
  private holding: Svid | undefined;
  private generation = 0;

  constructor(options: RenewalOptions) {
    this.options = options;
    this.window = options.window ?? DEFAULT_WINDOW;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.random = options.random ?? Math.random;
    const watch = options.clockCheckMs === undefined ? undefined : new ClockWatch(options.clockCheckMs);
    this.timer = new WallClockTimer({
      ...(watch ? { watch } : {}),
      onJump: (jumpMs, due) => {
        if (jumpMs < CLOCK_JUMP_MS) return;
        options.logger.warn({ jumpMs: Math.round(jumpMs), dueAt: new Date(this.dueAt ?? 0).toISOString() }, clockJumpMessage(jumpMs, 'renewal', due));
      },
    });
    if (!(this.window.from >= 0 && this.window.from <= this.window.to && this.window.to < 1)) {
      throw new RangeError(`renewal window must satisfy 0 <= from <= to < 1, got ${this.window.from}..${this.window.to}`);
    }
  }

  /** When the next attempt (or the swap of an SVID that starts later) is due, for /identity; undefined when stopped. */
  get nextRenewalAt(): Date | undefined {
    return this.dueAt === undefined ? undefined : new Date(this.dueAt);
  }

  /**
   * Whether a new SVID has been obtained and is not in use yet (its save under way, or its start
   * ahead). The bundle refresh leaves the current one alone meanwhile: the new one brings the
   * CA's bundle, and a rebundled current one saved after it would put the older leaf on disk.
   */
  get holdsNewer(): boolean {
    return this.holding !== undefined;
  }

  /** Failed attempts since the last success. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    const current = this.options.identity.current();
    const at = renewalTime(current, this.window, this.random).getTime();
    const now = Date.now();
    this.schedule(at > now ? this.pastBackdating(current, at, now) : at);
  }

  /**
   * A renewal time `at` (after `now`) for an SVID that has just arrived (`arrived`: renewed now;
   * else one at start as young as the CA's backdating and a save's wait), moved to the window's
   * start of what is left before the retry deadline if it falls before that. The window is measured from notBefore, which
   * the CA backdates by a tenth of the ttl: with a short ttl and a window from 0.1 the renewal
   * time came about a second after each arrival (14 renewals in 15 s with `ttl: 2m`, each a key,
   * a CSR, a handshake and a signature), and a CA a few seconds behind or a slow save kept that
   * loop going past an age test. An older SVID loaded at a restart keeps its window as it is.
   */
  private pastBackdating(svid: Svid, at: number, now: number, arrived = false): number {
    if (!arrived && now - svid.notBefore.getTime() > backdatedAgeMs(lifetimeMs(svid)) + PERSIST_WAIT_MS) return at;
    // what is left before the last retries' time (retryDeadline), not before expiry: with a high
    // `from` and a CA far behind, the window's start of what is left came after that deadline
    return Math.max(at, now + this.window.from * (retryDeadline(svid) - now));
  }

  /**
   * Renews at once, unless an attempt is under way (its result is as new as this one would be)
   * or attempts are failing: the back-off's next attempt stands (a bundle poll finding the leaf
   * untrusted at every poll, 1 s apart, made 27 attempts in 10 s through a 28 s back-off).
   */
  renewNow(): void {
    if (this.running && this.timer.pending && this.failures === 0) this.schedule(Date.now());
  }

  stop(): void {
    this.running = false;
    this.holding = undefined;
    this.generation += 1; // an attempt in flight finds itself outdated and drops its result
    this.timer.cancel();
    this.dueAt = undefined;
  }

  /**
   * One timer: the next attempt, or (`run`) the swap of an SVID obtained before it starts. It
   * fires by the wall clock (see wall-clock-timer.ts): a host suspended and resumed, or a clock
   * stepped ahead, renews within clockCheckMs of it, with one warning naming the jump.
   */
  private schedule(at: number, run: () => void = () => void this.attempt()): void {
    this.dueAt = at;
    // not unref'd: a scheduled renewal is work pending; stop() releases the event loop
    this.timer.set(at, run);
  }

  private async attempt(): Promise<void> {
    const { identity, obtain, persist, logger } = this.options;
    const generation = this.generation;
    const current = identity.current();
    let next: Svid;
    try {
      next = await obtain(current);
      if (generation !== this.generation) return;
      this.holding = next;
      if (persist) {
        const saved = persist(next).then(
          () => true,
          (err: unknown) => {
            logger.error({ err: describeError(err) }, 'could not persist the renewed SVID; a restart will need a new join token');
            return true;
          },
        );
        const waitMs = this.options.persistWaitMs ?? PERSIST_WAIT_MS;
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([saved, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))]);
        clearTimeout(timer);
        if (!inTime) logger.warn({ serial: next.serialHex, waitedMs: waitMs }, `saving the renewed SVID takes over ${waitMs / 1000} s; it is swapped in meanwhile and the save carries on`);
      }
      if (generation !== this.generation) return;
      if (next.validFrom.getTime() > Date.now()) {
        // the CA's clock is ahead: peers would refuse it before its start, so the current one
        // serves until then (stored already: a restart meanwhile finds both)
        warnNotYetValid(logger, next, `the current SVID (serial ${current.serialHex})`);
        this.schedule(servableAtMs(next), () => this.swapIn(next));
        return;
      }
      identity.swap(next);
    } catch (err) {
      if (generation !== this.generation) return;
      this.holding = undefined;
      this.failed(current, err);
      return;
    }
    this.holding = undefined;
    this.succeeded(next);
  }

  /** The SVID obtained before it started, now that it has. */
  private swapIn(next: Svid): void {
    const { identity } = this.options;
    this.holding = undefined;
    try {
      identity.swap(next);
    } catch (err) {
      this.failed(identity.current(), err);
      return;
    }
    this.succeeded(next);
  }

  private succeeded(next: Svid): void {
    this.failures = 0;
    this.mismatchReported = 'no';
    this.options.identity.reportRenewal({ result: 'success' });
    const at = renewalTime(next, this.window, this.random).getTime();
    const now = Date.now();
    if (at > now) {
      this.staleReported = false;
      this.schedule(this.pastBackdating(next, at, now, true));
    } else {
      this.schedule(this.afterStale(next));
    }
  }

  /**
   * When to renew an SVID that arrived due for renewal already: more than the window's start of
   * its lifetime was gone (its notBefore far in our past: the CA's clock behind ours). Renewing
   * at its renewal time, i.e. at once, got another such SVID, in a loop: 214 renewals in 5 s
   * from a CA 40 s behind with 60 s SVIDs (a key, a CSR, a TLS handshake and a signature each).
   * Instead the window applies to what is left, and never sooner than a second. Said once, at
   * warn, unless the CA's backdating explains it (backdatedAgeMs): then at debug, clocks unblamed.
   */
  private afterStale(next: Svid): number {
    const now = Date.now();
    const left = next.notAfter.getTime() - now;
    const fraction = this.window.from + (this.window.to - this.window.from) * this.random();
    const fields = { serial: next.serialHex, notBefore: next.notBefore.toISOString(), notAfter: next.notAfter.toISOString(), leftMs: left };
    if (now - next.notBefore.getTime() <= backdatedAgeMs(lifetimeMs(next))) {
      // the window starts within the CA's backdating (a short ttl, a window from 0.1): both
      // clocks may well be right, so no warning telling the operator to set them
      this.options.logger.debug(fields, `the new SVID (serial ${next.serialHex}) was due for renewal on arrival: the renewal window's start falls within the CA's backdating of its notBefore; renewing within what is left`);
      return now + Math.max(MIN_STALE_RENEWAL_MS, left * fraction);
    }
    const message = `the new SVID (serial ${next.serialHex}) arrived with ${Math.max(0, Math.round(left / 1000))} s of its ${Math.round(lifetimeMs(next) / 1000)} s left (notBefore ${fields.notBefore}): the CA's clock is behind this host's; renewing within what is left; set both clocks right (NTP)`;
    if (!this.staleReported) this.options.logger.warn(fields, message);
    else this.options.logger.debug(fields, message);
    this.staleReported = true;
    return now + Math.max(MIN_STALE_RENEWAL_MS, left * fraction);
  }

  private failed(current: Svid, err: unknown): void {
    const { identity, logger } = this.options;
    const attempt = this.failures;
    this.failures += 1;
    let delay = backoffDelayMs(attempt, this.backoff, this.random);
    // honour a CA's Retry-After up to the backoff's cap (a CA, or something posing as one, must not
    // park an expired sidecar for a day), with the jittered step on top, as first issuance does
    // (bootstrap.ts): the sidecars a CA turned away together come back spread, not all at the
    // moment its rate limiter refills (where one got the token and the rest another 429) or at
    // the cap; before expiry the deadline below still wins
    if (isMeshcarError(err) && err.retryAfterSeconds !== undefined) delay += Math.min(err.retryAfterSeconds * 1000, this.backoff.capMs);
    const now = Date.now();
    const deadline = retryDeadline(current);
    // keep the last retries before expiry; past the deadline, plain backoff (the SVID is lost anyway)
    if (deadline > now) delay = Math.max(MIN_RETRY_MS, Math.min(delay, deadline - now));
    const expired = current.notAfter.getTime() <= now;
    const fields = { failures: this.failures, retryInMs: delay, notAfter: current.notAfter.toISOString() };
    if (isMeshcarError(err) && err.code === 'ca_mismatch') {
      // a CA of another trust domain, or one our bundle does not vouch for, is a config
      // mistake, not an outage: said once, at error, with its fix; the retries go on quietly
      // (the config may be mended by a reload)
      const state = expired ? 'once expired' : 'while valid';
      if (this.mismatchReported === state) logger.debug(fields, `SVID renewal failed again: ${describeError(err)}`);
      else {
        const standing = expired ? `the current SVID expired at ${fields.notAfter}` : `still serving the current SVID until ${fields.notAfter}`;
        logger.error(fields, `SVID renewal failed, ${standing}: ${describeError(err)}`);
      }
      this.mismatchReported = state;
    } else {
      logger[expired ? 'error' : 'warn'](fields, `SVID renewal failed${expired ? ' and the current SVID has expired' : ', still serving the current SVID'}: ${describeError(err)}`);
    }
    identity.reportRenewal({ result: 'failure', error: err });
    this.schedule(now + delay);
  }
}

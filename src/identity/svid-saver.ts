// Saves the workload's SVIDs under identity.dir, one save at a time, and keeps trying one that
// could not be saved (a full or read-only disk): until it is on disk, a restart needs the join
// token again, which may be single-use and spent. Every failed save is reported (the sidecar
// counts them in meshcar_identity_persist_failures_total, so an alert can see a disk the
// renewals alone would hide); retries back off from 1 s to 5 min on an unref'd timer and end
// once the SVID is saved, a newer one is to be saved instead, it has expired, or stop().

import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { formatApproxDuration } from '../config/duration.js';
import type { Svid } from './svid.js';

export interface SaveRetry {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** 1 s, doubling to 5 min: a disk made writable again is used within seconds, a broken one costs a try every 5 min. */
export const SAVE_RETRY: SaveRetry = Object.freeze({ firstMs: 1_000, maxMs: 300_000 });

export interface SvidSaverOptions {
  readonly store: { readonly dir: string; save(svid: Svid): Promise<void> };
  readonly logger: Logger;
  /** Each failed save, retries included. */
  readonly onFailure?: (err: unknown) => void;
  readonly retry?: SaveRetry;
}

export class SvidSaver {
  /** Saves run one after another (the store has a single writer). */
  private chain: Promise<void> = Promise.resolve();
  /** The newest SVID asked to be saved, until it is. */
  private wanted: Svid | undefined;
  /** Failed saves of `wanted` in a row. */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: SvidSaverOptions) {}

  /** Saves `svid` after any save under way. Resolves true once saved, false if not (then retried); never rejects. */
  save(svid: Svid): Promise<boolean> {
    this.wanted = svid;
    this.failures = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.attempt(svid);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private attempt(svid: Svid): Promise<boolean> {
    const run = this.chain.then(() => this.options.store.save(svid));
    this.chain = run.catch(() => undefined);
    return run.then(
      () => {
        this.saved(svid);
        return true;
      },
      (err: unknown) => {
        this.failed(svid, err);
        return false;
      },
    );
  }

  private saved(svid: Svid): void {
    if (this.wanted !== svid) return;
    if (this.failures > 0) {
      this.options.logger.info({ dir: this.options.store.dir, serial: svid.serialHex, failures: this.failures }, `saved the SVID in ${this.options.store.dir} after ${this.failures} failed ${this.failures === 1 ? 'attempt' : 'attempts'}`);
    }
    this.wanted = undefined;
    this.failures = 0;
  }

  private failed(svid: Svid, err: unknown): void {
    const { store, logger, onFailure, retry = SAVE_RETRY } = this.options;
    onFailure?.(err);
    // a newer SVID is on its way to the disk: its own save is what matters now
    if (this.stopped || this.wanted !== svid) return;
    this.failures += 1;
    const delay = Math.min(retry.maxMs, retry.firstMs * 2 ** Math.min(this.failures - 1, 30));
    const fields = { dir: store.dir, serial: svid.serialHex, failures: this.failures, retryInMs: delay };
    if (svid.notAfter.getTime() <= Date.now() + delay) {
      logger.warn(fields, `gave up saving the SVID in ${store.dir}: it expires before the next attempt (${describeError(err)})`);
      this.wanted = undefined;
      return;
    }
    // said once at error; the retries (and the counter) carry on quietly
    if (this.failures === 1) logger.error(fields, `could not save the SVID in ${store.dir}: ${describeError(err)}; trying again in ${formatApproxDuration(delay)} (until it is saved, a restart may need a new join token)`);
    else logger.debug(fields, `could not save the SVID again: ${describeError(err)}`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped && this.wanted === svid) void this.attempt(svid);
    }, delay);
    this.timer.unref();
  }
}

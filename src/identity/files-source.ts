// identity.files: certificates managed by someone else (cert-manager, SPIRE, Vault agent),
// loaded, validated and hot-reloaded. Their writers replace files by rename or by swapping a
// symlinked directory (or the whole folder: dir-watch.ts), so we watch the containing
// directories, not the files (and the folders their symlinks lead into); a set that does
// not validate is refused with one warning per attempt and the old identity keeps serving; one
// whose bundle drops a root waits for its bytes to stand (narrowing-settle.ts).
// Files that cannot be read at all (EMFILE, a chmod under way, a link dangling for a moment) are
// read again with backoff, since the change that made them may have been the last event.

import { readBoundedText } from '../bounded-file.js';
import { MAX_PEM_FILE_BYTES } from './pem-files.js';
import path from 'node:path';
import type { Logger } from 'pino';
import { MeshcarError, describeError } from '../errors.js';
import { formatApproxDuration } from '../config/duration.js';
import { notValidBeforeMs, validateSvid, type Svid } from './svid.js';
import type { WorkloadIdentity } from './workload-identity.js';
import { ReplaceableDirWatch } from './dir-watch.js';
import { linkedDirs } from './link-dirs.js';
import { WallClockTimer } from '../wall-clock-timer.js';
import { rootsRemoved } from '../pki/chain-to-roots.js';
import { NARROWING_SETTLE_MS, NarrowingSettle } from './narrowing-settle.js';
import { firstRefusalInOrder } from '../first-refusal.js';

export interface IdentityFiles {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
}

interface FilesContent {
  readonly privateKeyPem: string;
  readonly chainPem: string;
  readonly bundlePem: string;
}

async function readFiles(files: IdentityFiles): Promise<FilesContent> {
  // the message names the config key as well as the file: what to mend, and where
  const read = (file: string, key: string) =>
    readBoundedText(file, MAX_PEM_FILE_BYTES).catch((err: unknown) => {
      throw new MeshcarError('identity_invalid', `identity.files.${key}: cannot read ${file}: ${describeError(err)}`, { cause: err });
    });
  const [chainPem, privateKeyPem, bundlePem] = await firstRefusalInOrder([read(files.cert, 'cert'), read(files.key, 'key'), read(files.bundle, 'bundle')]);
  return { chainPem, privateKeyPem, bundlePem };
}

function validateFiles(content: FilesContent, files: IdentityFiles, spiffeId: string): Svid {
  try {
    return validateSvid({ ...content, paths: { chain: files.cert, bundle: files.bundle } }, spiffeId);
  } catch (err) {
    throw new MeshcarError('identity_invalid', `${files.cert} / ${files.key} / ${files.bundle}: ${describeError(err)}`, { cause: err });
  }
}

/** Loads and validates the files once; throws identity_invalid naming the files. */
export async function loadSvidFiles(files: IdentityFiles, spiffeId: string): Promise<Svid> {
  return validateFiles(await readFiles(files), files, spiffeId);
}

/**
 * One warning when a set taken from the files stops working before its leaf does (an
 * intermediate or the bundle root ending first): nothing else would say so until every peer
 * refuses this sidecar, and the leaf's date suggests there is plenty of time.
 */
export function warnIfChainEndsFirst(svid: Svid, files: IdentityFiles, logger: Logger): void {
  if (!(svid.notAfter < svid.leafNotAfter)) return;
  const notAfter = svid.notAfter.toISOString();
  logger.warn(
    { serial: svid.serialHex, notAfter, leafNotAfter: svid.leafNotAfter.toISOString() },
    `${files.cert} / ${files.bundle}: ${svid.endsWith} expires at ${notAfter}, before the leaf (${svid.leafNotAfter.toISOString()}): from then on every peer refuses this sidecar and /ready answers 503 expired, unless new files come first`,
  );
}

export interface FilesWatchOptions {
  readonly files: IdentityFiles;
  readonly identity: WorkloadIdentity;
  readonly logger: Logger;
  /** Writers replace cert and key one after the other; wait for the burst to settle. */
  readonly debounceMs?: number;
  /**
   * Test hook, true in production: false leaves the folders the files' links lead into
   * unwatched, so a test can make a change that only the read retries find.
   */
  readonly followLinks?: boolean;
}

/**
 * A burst of events is read at most this long after its first: every event puts the read off by
 * the debounce, and a folder written every 100 ms by something else (a heartbeat file beside the
 * certificates) put it off for as long as that went on, the new set unread and nothing logged.
 */
const MAX_BURST_WAIT_MS = 1_000;
/** After a set's notBefore, before it is read again: the clock's second is past. */
const VALIDITY_MARGIN_MS = 1_000;
const MAX_VALIDITY_WAIT_MS = 3_600_000;
/**
 * After a failed read: 1 s, doubling to 30 s, until a read works. Only while reads fail: a
 * sidecar whose files read fine sets no timer (an idle sidecar stays asleep); a path that stays
 * unreadable costs one read every 30 s.
 */
export const READ_RETRY_FIRST_MS = 1_000;
export const READ_RETRY_MAX_MS = 30_000;

/** Watches the files and swaps each new valid set into `identity`. */
export class FilesWatcher {
  private readonly options: FilesWatchOptions;
  private readonly watch: ReplaceableDirWatch;
  /** The files' own folders (watched by `watch`). */
  private readonly dirs: ReadonlySet<string>;
  /** The folders the files' symlinks lead into, when any do; followed anew after each read. */
  private linked: ReplaceableDirWatch | undefined;
  private linkedKey: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the burst the timer waits out began (performance.now()). */
  private burstFrom = 0;
  /** A look at files refused as not valid yet, once they are. */
  /** By the wall clock: a clock stepped ahead to the start reads them within 30 s. */
  private readonly validityTimer = new WallClockTimer({ unref: true });
  /** The next read after one that failed: at most one. */
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed reads in a row; the backoff grows with them. */
  private readFailures = 0;
  /** The last failed read's reason: the same again is logged at debug (a retry every 30 s is no news). */
  private readError: string | undefined;
  private reloading: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** What the files held at the last attempt: unchanged bytes are not re-tried nor re-logged. */
  private lastSeen: string | undefined;
  /** The next read looks at unchanged bytes too: a set refused as not valid yet, now that it may be. */
  private lookAtSeen = false;
  /**
   * Why the last attempt failed, until one works: `read` (the files could not be read) or
   * `refused` (they did not validate). A read that works again on the files already in use ends
   * it too, as a success: /identity's renewalFailing and doctor stop saying the files fail.
   */
  private failing: 'read' | 'refused' | undefined;
  /** A set that drops a root waits for its bytes to stand (narrowing-settle.ts). */
  private readonly narrowing = new NarrowingSettle(() => void this.reload());

  constructor(options: FilesWatchOptions) {
    this.options = options;
    const dirs = new Set(Object.values(options.files).map((f: string) => path.dirname(path.resolve(f))));
    this.dirs = dirs;
    // any event in the directory counts: a Kubernetes secret update renames "..data", not our
    // names; and a folder replaced whole (mv away, a new one written) is watched anew
    this.watch = new ReplaceableDirWatch(dirs, () => this.changed(), options.logger);
    void this.followLinks();
  }

  /**
   * Watches the folders the files' symlinks lead into (link-dirs.ts): a target rewritten there
   * sends no event here. Looked at after every read, since a writer may point a link elsewhere.
   */
  private async followLinks(): Promise<void> {
    if (this.options.followLinks === false) return;
    const found = await Promise.all(Object.values(this.options.files).map((f: string) => linkedDirs(f)));
    const dirs = [...new Set(found.flat())].filter((d) => !this.dirs.has(d)).sort();
    const key = dirs.join('\n');
    if (this.closed || key === this.linkedKey) return;
    const first = this.linkedKey === undefined;
    this.linkedKey = key;
    this.linked?.close();
    this.linked = dirs.length > 0 ? new ReplaceableDirWatch(dirs, () => this.changed(), this.options.logger) : undefined;
    // a change in a newly followed folder may have landed before its watch began: also the
    // first time, as the start's read came before it (a set rewritten in that window sent its
    // events to no one, and the SVID read at the start would have served on)
    if (!first || dirs.length > 0) this.changed();
  }

  private changed(): void {
    if (this.closed) return;
    const now = performance.now();
    if (this.timer) clearTimeout(this.timer);
    else this.burstFrom = now;
    const wait = Math.min(this.options.debounceMs ?? 200, Math.max(0, this.burstFrom + MAX_BURST_WAIT_MS - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, wait);
  }

  /** Re-reads the files now; resolves once this attempt (and any it coalesced) is done. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.reloadOnce().then(() => this.followLinks()).finally(() => {
      this.reloading = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    const { files, identity, logger } = this.options;
    let content: FilesContent;
    try {
      content = await readFiles(files);
    } catch (err) {
      this.readFailed(err);
      return;
    }
    this.readWorked();
    const seen = fingerprint(content);
    // a narrowing set waited for whose bytes changed since (the rest of the bundle came) is not taken
    if (this.narrowing.read(seen)) logger.info("the identity files changed again before the bundle that left out a root was taken: it is not (it was half written, or changed back)");
    // unchanged bytes after a failed read are looked at again: they may be the set in use (a recovery)
    const lookAtSeen = this.lookAtSeen;
    this.lookAtSeen = false;
    if ((seen === this.lastSeen && this.failing !== 'read' && !lookAtSeen) || this.closed) return;
    this.lastSeen = seen;
    // new bytes are judged now: a wait armed for other bytes not valid yet would re-read these and
    // warn of them again (a set still not valid yet arms it anew)
    this.validityTimer.cancel();
    let next: Svid;
    try {
      next = validateFiles(content, files, identity.spiffeId);
      // the first event after start, or a writer touching files without changing them
      if (sameMaterial(next, identity.current())) {
        if (this.failing !== undefined) {
          this.failing = undefined;
          logger.info({ serial: next.serialHex }, 'the identity files hold the SVID in use again');
          identity.reportRenewal({ result: 'success' });
        }
        return;
      }
      if (rootsRemoved(identity.current().bundlePem, next.bundlePem)) {
        const first = !this.narrowing.waiting(seen);
        if (!this.narrowing.settled(seen)) {
          // read again when the wait is over: these bytes are not skipped as seen then
          this.lastSeen = undefined;
          if (first) logger.info({ serial: next.serialHex }, `the identity files' bundle leaves out a root of the bundle in use: taken if it stays so for ${NARROWING_SETTLE_MS} ms (a bundle rewritten in place may be half written)`);
          return;
        }
      }
      identity.swap(next);
    } catch (err) {
      // not valid yet (an issuer's clock a little ahead): the same bytes are taken once they are
      const validFrom = notValidBeforeMs(err);
      if (validFrom !== undefined) this.lookAgainAt(validFrom);
      this.failing = 'refused';
      this.refused(err);
      return;
    }
    this.failing = undefined;
    logger.info({ serial: next.serialHex, notAfter: next.notAfter.toISOString() }, 'identity reloaded from files');
    warnIfChainEndsFirst(next, files, logger);
    identity.reportRenewal({ result: 'success' });
  }

  /** Re-reads the files once `validFromMs` has passed, unchanged bytes included. */
  private lookAgainAt(validFromMs: number): void {
    // only this read looks at the same bytes again: an event meanwhile (another file in the
    // folder written) re-read them, and warned and counted a failure, at every such event
    // at most an hour at a time (a far-off date is looked at again, then waited for again)
    this.validityTimer.set(Math.min(validFromMs + VALIDITY_MARGIN_MS, Date.now() + MAX_VALIDITY_WAIT_MS), () => {
      this.lookAtSeen = true;
      void this.reload();
    });
  }

  private refused(err: unknown, retryInMs?: number): void {
    const { identity, logger } = this.options;
    logger.warn(
      { keeping: identity.current().serialHex, ...(retryInMs === undefined ? {} : { retryInMs }) },
      `refused the new identity files, keeping the current SVID: ${describeError(err)}${retryInMs === undefined ? '' : `; reading them again in ${formatApproxDuration(retryInMs)}`}`,
    );
    identity.reportRenewal({ result: 'failure', error: err });
  }

  /**
   * The files could not be read (not: they were read and refused). The change that is on its
   * way may have sent its last event already: read again with backoff until a read works.
   */
  private readFailed(err: unknown): void {
    if (this.closed) return;
    this.failing = 'read';
    const delay = Math.min(READ_RETRY_MAX_MS, READ_RETRY_FIRST_MS * 2 ** Math.min(this.readFailures, 16));
    this.readFailures += 1;
    const reason = describeError(err);
    if (reason !== this.readError) this.refused(err, delay);
    else this.options.logger.debug({ failures: this.readFailures, retryInMs: delay }, `the identity files still cannot be read: ${reason}`);
    this.readError = reason;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reload();
    }, delay);
    this.retryTimer.unref();
  }

  private readWorked(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.readFailures > 0) this.options.logger.info({ failures: this.readFailures }, 'the identity files can be read again');
    this.readFailures = 0;
    this.readError = undefined;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.narrowing.clear();
    this.validityTimer.cancel();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watch.close();
    this.linked?.close();
  }
}

function sameMaterial(a: Svid, b: Svid): boolean {
  return a.chainPem === b.chainPem && a.privateKeyPem === b.privateKeyPem && a.bundlePem === b.bundlePem;
}

function fingerprint(content: FilesContent): string {
  return `${content.chainPem}\u0000${content.privateKeyPem}\u0000${content.bundlePem}`;
}

// Remembers which single-use join tokens have been spent, on disk, so a token is refused the
// second time even after a CA restart. Entries are dropped PRUNE_MARGIN_MS after their token
// expired, not at once: the writer prunes by its own clock, and a server on the folder whose
// clock ran ahead dropped entries of tokens the others still accepted (a spent token worked
// again after their next restart).
// The file is the record, not this process's copy: every spend reads it, adds the token and
// writes it back under the CA folder's lock, so two servers on one folder (an overlapping
// restart, a second port, two replicas on one volume) spend a token once between them and
// never write over each other's entries.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { withCaLock } from './folder-lock.js';
import { DEFAULT_CA_TIMEOUT_MS } from '../identity/ca-exchange.js';

export const LEDGER_FILE = 'used-tokens.json';

/**
 * How long past its token's exp an entry is kept. A CA accepts a token until exp by its own
 * clock, with no leeway, so an entry dropped by a server whose clock runs ahead of another's by
 * less than this is one the other refuses as expired anyway; only clocks a week apart (set the
 * clocks right: NTP) reopen a spent token. The price: a week more of small entries.
 */
export const PRUNE_MARGIN_MS = 7 * 24 * 3_600_000;

/**
 * How long a spend waits for the folder's lock (held by a CA command, or another server's
 * spend) from the moment it was asked for: well inside the sidecar's request timeout, so the
 * sidecar hears the 503 ca_busy (and the token stays unspent, to retry) instead of giving up on a CA that could
 * still spend the token for a certificate nobody receives.
 */
export const SPEND_LOCK_WAIT_MS = DEFAULT_CA_TIMEOUT_MS / 2;

/** True once an entry may go: its token expired more than PRUNE_MARGIN_MS ago by this clock. */
const prunable = (expSeconds: number, nowMs: number) => expSeconds * 1000 + PRUNE_MARGIN_MS <= nowMs;

const tokenExpired = (expSeconds: number) => new MeshcarError('token_expired', `the join token expired at ${new Date(expSeconds * 1000).toISOString()}; ask for a new one`);
const tokenUsed = () => new MeshcarError('token_used', 'this single-use join token has already been used');

export class TokenLedger {
  /** Tokens this process has seen spent (jti -> expiry, epoch seconds): a fast refusal, and the reservation of one being spent. */
  private spent = new Map<string, number>();
  /** Spends one after another within the process: the folder's lock is a file polled every 100 ms. */
  private writes: Promise<void> = Promise.resolve();
  /** Tokens whose spend is being recorded now: spent once it lands, not before. */
  private readonly spending = new Set<string>();

  private constructor(
    private readonly dir: string,
    private readonly path: string,
  ) {}

  static async open(dir: string): Promise<TokenLedger> {
    const ledger = new TokenLedger(dir, join(dir, LEDGER_FILE));
    ledger.spent = await ledger.read();
    return ledger;
  }

  private async read(): Promise<Map<string, number>> {
    const spent = new Map<string, number>();
    try {
      const entries = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, number>;
      for (const [jti, exp] of Object.entries(entries)) spent.set(jti, exp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MeshcarError('ca_missing', `${this.path} cannot be read (${(err as Error).message}); it records spent single-use tokens and must not be lost`);
      }
    }
    return spent;
  }

  /**
   * Marks a token spent, durably, before the certificate is signed: a crash after this point
   * wastes the token, the safe way round. Throws token_used if it was spent already, here or
   * by another process on the same folder. A spend that could not be recorded (the folder's
   * lock held past SPEND_LOCK_WAIT_MS, an unreadable ledger) leaves the token unspent: no
   * certificate came of it, so the retry must not be told token_used.
   */
  async redeem(jti: string, expSeconds: number, nowMs = Date.now(), requester?: AbortSignal): Promise<void> {
    const lockWaitUntil = performance.now() + SPEND_LOCK_WAIT_MS;
    // an expired token is never spent, whenever its request was authenticated, by this CA's own
    // clock and with no leeway: the entries of expired tokens are dropped (PRUNE_MARGIN_MS after
    // their end), so one spent before and looked up now could be missing and pass
    if (expSeconds * 1000 <= nowMs) throw tokenExpired(expSeconds);
    // a spend under way may yet fail and leave the token unspent: a second request meanwhile is
    // busy, not token_used (final to a sidecar: one restarted while its first request waited for
    // the lock gave up for good, and the token came back unspent). Asked first: the spend marks
    // the token spent before its write lands (record), and a write that then fails unspends it
    if (this.spending.has(jti)) throw new MeshcarError('ca_busy', 'the join token is being spent by another request now; this one did not spend it: retry', { retryAfterSeconds: 1 });
    // the check-and-set is synchronous, so two concurrent requests here cannot both pass
    if (this.spent.has(jti)) throw tokenUsed();
    this.spending.add(jti);
    const write = this.writes.then(() => withCaLock(this.dir, () => this.record(jti, expSeconds, requester), { until: lockWaitUntil }));
    this.writes = write.catch(() => undefined);
    try {
      await write;
    } catch (err) {
      // not recorded: not spent here (the file, read under the lock at every spend, still
      // refuses a token some other server spent, or whose write landed before a late failure)
      if (!(err instanceof MeshcarError && err.code === 'token_used')) this.spent.delete(jti);
      // a lock held by a CA command (rotate-issuer, root ...) or another server's spends ends
      // soon: 503 with Retry-After, which the sidecar's first issuance retries by itself (a 403
      // ended its start, and a restart loop in a pod)
      if (err instanceof MeshcarError && err.code === 'forbidden') throw new MeshcarError('ca_busy', `${err.message}; the join token was not spent: retry`, { retryAfterSeconds: 1 });
      throw err;
    } finally {
      this.spending.delete(jti);
    }
  }

  /** Under the folder's lock: the file as it is now, plus this token, less what expired long enough ago (PRUNE_MARGIN_MS). */
  private async record(jti: string, expSeconds: number, requester: AbortSignal | undefined): Promise<void> {
    // a requester gone while the spend waited for the lock would never get the certificate:
    // the token stays unspent for its retry
    if (requester?.aborted) throw new MeshcarError('client_closed', 'the connection closed before the join token was spent; it was not spent');
    // the clock as the lock is taken: a token that ran out while its spend waited is not spent
    const nowMs = Date.now();
    if (expSeconds * 1000 <= nowMs) throw tokenExpired(expSeconds);
    const onDisk = await this.read();
    if (onDisk.has(jti)) throw tokenUsed(); // spent by another server on this folder
    onDisk.set(jti, expSeconds);
    for (const [id, exp] of onDisk) if (prunable(exp, nowMs)) onDisk.delete(id);
    for (const [id, exp] of onDisk) this.spent.set(id, exp);
    for (const [id, exp] of this.spent) if (prunable(exp, nowMs)) this.spent.delete(id);
    await writeFileAtomic(this.path, JSON.stringify(Object.fromEntries(onDisk)), 0o600);
  }
}

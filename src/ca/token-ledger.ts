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

export const LEDGER_FILE = 'used-tokens.json';

/**
 * How long past its token's exp an entry is kept. A CA accepts a token until exp by its own
 * clock, with no leeway, so an entry dropped by a server whose clock runs ahead of another's by
 * less than this is one the other refuses as expired anyway; only clocks a week apart (set the
 * clocks right: NTP) reopen a spent token. The price: a week more of small entries.
 */
export const PRUNE_MARGIN_MS = 7 * 24 * 3_600_000;

/** True once an entry may go: its token expired more than PRUNE_MARGIN_MS ago by this clock. */
const prunable = (expSeconds: number, nowMs: number) => expSeconds * 1000 + PRUNE_MARGIN_MS <= nowMs;

const tokenUsed = () => new MeshcarError('token_used', 'this single-use join token has already been used');

export class TokenLedger {
  /** Tokens this process has seen spent (jti -> expiry, epoch seconds): a fast refusal, and the reservation of one being spent. */
  private spent = new Map<string, number>();
  /** Spends one after another within the process: the folder's lock is a file polled every 100 ms. */
  private writes: Promise<void> = Promise.resolve();

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
   * by another process on the same folder.
   */
  async redeem(jti: string, expSeconds: number, nowMs = Date.now()): Promise<void> {
    // an expired token is never spent, whenever its request was authenticated, by this CA's own
    // clock and with no leeway: the entries of expired tokens are dropped (PRUNE_MARGIN_MS after
    // their end), so one spent before and looked up now could be missing and pass
    if (expSeconds * 1000 <= nowMs) throw new MeshcarError('token_expired', `the join token expired at ${new Date(expSeconds * 1000).toISOString()}; ask for a new one`);
    // the check-and-set is synchronous, so two concurrent requests here cannot both pass; the
    // token stays marked whatever happens next (a failed write wastes it, the safe way round)
    if (this.spent.has(jti)) throw tokenUsed();
    this.spent.set(jti, expSeconds);
    const write = this.writes.then(() => withCaLock(this.dir, () => this.record(jti, expSeconds, nowMs)));
    this.writes = write.catch(() => undefined);
    await write;
  }

  /** Under the folder's lock: the file as it is now, plus this token, less what expired long enough ago (PRUNE_MARGIN_MS). */
  private async record(jti: string, expSeconds: number, nowMs: number): Promise<void> {
    const onDisk = await this.read();
    if (onDisk.has(jti)) throw tokenUsed(); // spent by another server on this folder
    onDisk.set(jti, expSeconds);
    for (const [id, exp] of onDisk) if (prunable(exp, nowMs)) onDisk.delete(id);
    for (const [id, exp] of onDisk) this.spent.set(id, exp);
    for (const [id, exp] of this.spent) if (prunable(exp, nowMs)) this.spent.delete(id);
    await writeFileAtomic(this.path, JSON.stringify(Object.fromEntries(onDisk)), 0o600);
  }
}

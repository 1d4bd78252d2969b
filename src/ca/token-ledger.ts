// Remembers which single-use join tokens have been spent, on disk, so a token is refused the
// second time even after a CA restart. Entries are dropped once their token has expired.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';

export const LEDGER_FILE = 'used-tokens.json';

export class TokenLedger {
  private spent = new Map<string, number>(); // jti → expiry (epoch seconds)
  private writes: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string) {}

  static async open(dir: string): Promise<TokenLedger> {
    const ledger = new TokenLedger(join(dir, LEDGER_FILE));
    try {
      const entries = JSON.parse(await readFile(ledger.path, 'utf8')) as Record<string, number>;
      for (const [jti, exp] of Object.entries(entries)) ledger.spent.set(jti, exp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MeshcarError('ca_missing', `${ledger.path} cannot be read (${(err as Error).message}); it records spent single-use tokens and must not be lost`);
      }
    }
    return ledger;
  }

  /**
   * Marks a token spent, durably, before the certificate is signed: a crash after this point
   * wastes the token, the safe way round. Throws token_used if it was spent already.
   */
  async redeem(jti: string, expSeconds: number, nowMs = Date.now()): Promise<void> {
    // the check-and-set is synchronous, so two concurrent requests cannot both pass
    if (this.spent.has(jti)) throw new MeshcarError('token_used', 'this single-use join token has already been used');
    this.spent.set(jti, expSeconds);
    for (const [id, exp] of this.spent) if (exp * 1000 <= nowMs) this.spent.delete(id);
    const snapshot = JSON.stringify(Object.fromEntries(this.spent));
    const write = this.writes.then(() => writeFileAtomic(this.path, snapshot, 0o600));
    this.writes = write.catch(() => undefined);
    await write;
  }
}

// Keeps the workload's SVID across restarts under identity.dir, so a restart reuses the
// credential instead of spending the join token again. Each file is replaced atomically
// (temp file, fsync, rename, fsync the directory); the key is 0600 in a 0700 directory.

import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { lifetimeMs, remainingMs, validateSvid, type Svid } from './svid.js';

/** Same names as `meshcar ca issue` writes, so operators find what they expect. */
export const STORE_FILES = Object.freeze({ key: 'svid.key', chain: 'svid.crt', bundle: 'bundle.pem' });

export interface LoadOptions {
  /** Reuse only while at least this fraction of the lifetime is left (default 0.1). */
  readonly minRemainingFraction?: number;
  readonly now?: Date;
}

async function fsyncPath(target: string, flags: number): Promise<void> {
  const handle = await open(target, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class DiskStore {
  readonly dir: string;
  private readonly logger: Logger;

  constructor(dir: string, logger: Logger) {
    this.dir = dir;
    this.logger = logger;
  }

  file(name: keyof typeof STORE_FILES): string {
    return path.join(this.dir, STORE_FILES[name]);
  }

  /**
   * Persists the SVID. Files are renamed bundle → chain → key; a crash between two renames
   * leaves a set that fails validation on load, which falls back to a fresh issuance.
   */
  async save(svid: Svid): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // an existing directory may be wider than we want; it holds a private key
    await chmod(this.dir, 0o700);
    await writeFileAtomic(this.file('bundle'), svid.bundlePem, 0o644);
    await writeFileAtomic(this.file('chain'), svid.chainPem, 0o644);
    await writeFileAtomic(this.file('key'), svid.privateKeyPem, 0o600);
    // the renames are durable only once the directory entry is on disk
    await fsyncPath(this.dir, constants.O_RDONLY);
    this.logger.debug({ dir: this.dir, serial: svid.serialHex }, 'SVID saved');
  }

  /** The stored SVID if it is valid for expectedSpiffeId and has life left; otherwise undefined. */
  async load(expectedSpiffeId: string, options: LoadOptions = {}): Promise<Svid | undefined> {
    const { minRemainingFraction = 0.1, now = new Date() } = options;
    let privateKeyPem: string;
    let chainPem: string;
    let bundlePem: string;
    try {
      [privateKeyPem, chainPem, bundlePem] = await Promise.all([
        readFile(this.file('key'), 'utf8'),
        readFile(this.file('chain'), 'utf8'),
        readFile(this.file('bundle'), 'utf8'),
      ]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.logger.debug({ dir: this.dir }, 'no stored SVID');
      } else {
        this.logger.warn({ dir: this.dir }, `cannot read the stored SVID: ${describeError(err)}`);
      }
      return undefined;
    }
    const keyMode = (await stat(this.file('key'))).mode & 0o777;
    if (keyMode & 0o077) {
      this.logger.warn({ file: this.file('key') }, `the stored private key is readable by others (mode ${keyMode.toString(8)}); chmod 600 it`);
    }
    let svid: Svid;
    try {
      svid = validateSvid({ privateKeyPem, chainPem, bundlePem }, expectedSpiffeId, now);
    } catch (err) {
      this.logger.warn({ dir: this.dir }, `the stored SVID is not usable, requesting a new one: ${describeError(err)}`);
      return undefined;
    }
    if (remainingMs(svid, now) < lifetimeMs(svid) * minRemainingFraction) {
      this.logger.info({ dir: this.dir, notAfter: svid.notAfter.toISOString() }, 'the stored SVID is about to expire, requesting a new one');
      return undefined;
    }
    return svid;
  }
}

// How long the leaves a CA has issued can still be valid: what the root rotation steps wait for
// (leaf-lifetime.json). Two figures: the running CA server's maxTtl, which bounds every leaf
// it signs, and the latest notAfter of the leaves signed outside that bound (an offline
// `ca issue --ttl`, or a CA server that ran with a larger maxTtl before a restart), which only
// ever rises. Both are written under the CA lock, so a rotation step sees a leaf's notAfter or
// runs wholly before it is signed.

import { join } from 'node:path';
import type { Logger } from 'pino';
import { describeError, MeshcarError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { fileFingerprint, readJson, type RootRotation } from './ca-state.js';
import { LockBusyError, withCaLock } from './folder-lock.js';
import { DEFAULT_LEAF_TTL_MS } from './x509-profile.js';

export const LEAF_LIFETIME_FILE = 'leaf-lifetime.json';

export interface LeafLifetime {
  /** The CA server's maxTtl (the default while none has run): the longest leaf it signs. */
  readonly maxTtlMs: number;
  /** Epoch ms: no leaf signed outside that maxTtl is valid past this; 0 when there is none. */
  readonly leavesUntil: number;
}

interface Recorded {
  readonly maxTtlMs?: number;
  readonly leavesUntil?: string;
}

async function readRecorded(dir: string): Promise<Recorded> {
  const file = join(dir, LEAF_LIFETIME_FILE);
  const value = await readJson(file);
  if (value === undefined) return {};
  const { maxTtlMs, leavesUntil } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const validTtl = maxTtlMs === undefined || (typeof maxTtlMs === 'number' && maxTtlMs > 0);
  const validUntil = leavesUntil === undefined || (typeof leavesUntil === 'string' && Number.isFinite(Date.parse(leavesUntil)));
  // a figure that cannot be read must not shrink the rotation's wait to the default
  if (typeof value !== 'object' || value === null || !validTtl || !validUntil) {
    throw new MeshcarError('ca_missing', `${file} does not hold {"maxTtlMs": N, "leavesUntil": "ISO 8601"}; it records how long issued leaves stay valid: restore it from a backup`);
  }
  return { ...(maxTtlMs !== undefined ? { maxTtlMs: maxTtlMs as number } : {}), ...(leavesUntil !== undefined ? { leavesUntil: leavesUntil as string } : {}) };
}

function writeRecorded(dir: string, recorded: Recorded): Promise<void> {
  return writeFileAtomic(join(dir, LEAF_LIFETIME_FILE), `${JSON.stringify(recorded)}\n`, 0o644);
}

export async function readLeafLifetime(dir: string): Promise<LeafLifetime> {
  const recorded = await readRecorded(dir);
  return { maxTtlMs: recorded.maxTtlMs ?? DEFAULT_LEAF_TTL_MS, leavesUntil: recorded.leavesUntil ? Date.parse(recorded.leavesUntil) : 0 };
}

/** When every leaf signed up to `at` (epoch ms) has expired. */
export function leavesExpireBy(lifetime: LeafLifetime, at: number): number {
  return Math.max(at + lifetime.maxTtlMs, lifetime.leavesUntil);
}

/**
 * The CA server starting with `maxTtlMs`. The server before it signed leaves of its own maxTtl
 * up to now at the latest: those stay counted, so a restart with a smaller maxTtl does not
 * shorten the wait while they are valid.
 */
export function recordServerMaxTtl(dir: string, maxTtlMs: number, now = Date.now()): Promise<void> {
  return withCaLock(dir, async () => {
    const before = await readRecorded(dir);
    const carried = Math.max(before.leavesUntil ? Date.parse(before.leavesUntil) : 0, before.maxTtlMs !== undefined ? now + before.maxTtlMs : 0);
    await writeRecorded(dir, { maxTtlMs, ...(carried > 0 ? { leavesUntil: new Date(carried).toISOString() } : {}) });
  });
}

/**
 * A running CA server's share of the record: its maxTtl stays recorded while it signs. Another
 * server started on the same folder since with a smaller maxTtl (an overlapping restart, a
 * second port) recorded its own, and the rotation steps then waited for that one's leaves only
 * while this one went on signing longer ones: `root activate` was allowed before a leaf signed
 * under the old root expired, by as long as the two ran together (a review: two servers, 24h
 * and 1h). Looked at before each signing: a stat, and a write under the lock only when
 * another server lowered the figure (the larger maxTtl is kept, the longer wait).
 */
export class ServerLeafLifetime {
  /** The record's file as last found covering our leaves (ca-state.ts fileFingerprint), or undefined. */
  private seen: string | undefined = undefined;

  constructor(
    private readonly dir: string,
    private readonly maxTtlMs: number,
    private readonly logger: Logger,
  ) {}

  /** Before a leaf is signed: the record covers leaves of our maxTtl. A lock held past `until` (performance.now()): 503 ca_busy. */
  async beforeSign(until: number): Promise<void> {
    const file = join(this.dir, LEAF_LIFETIME_FILE);
    // 'none' too: a read-only folder without the file is tried once, not at every signing
    const found = await fileFingerprint(file);
    if (found === this.seen) return;
    try {
      if (((await readRecorded(this.dir)).maxTtlMs ?? DEFAULT_LEAF_TTL_MS) < this.maxTtlMs) {
        const lowered = await withCaLock(
          this.dir,
          async () => {
            const before = await readRecorded(this.dir);
            if ((before.maxTtlMs ?? DEFAULT_LEAF_TTL_MS) >= this.maxTtlMs) return undefined;
            await writeRecorded(this.dir, { ...before, maxTtlMs: this.maxTtlMs });
            return before.maxTtlMs;
          },
          { until },
        );
        if (lowered !== undefined) this.logger.warn({ dir: this.dir, maxTtlMs: this.maxTtlMs, recordedMaxTtlMs: lowered }, `another CA server on ${this.dir} recorded a smaller maxTtl; recorded this server's again, which the root rotation steps wait for while it signs`);
      }
    } catch (err) {
      if (err instanceof LockBusyError) throw new MeshcarError('ca_busy', `${err.message}; nothing was signed: retry`, { retryAfterSeconds: 1 });
      // a read-only folder still signs, as at start (where the figure could not be recorded either)
      this.logger.warn({ dir: this.dir }, `could not keep this server's maxTtl recorded in ${file} for the root rotation steps: ${describeError(err)}`);
    }
    this.seen = await fileFingerprint(file);
  }
}

/** A leaf signed outside the CA server (offline): call it holding the CA lock, before the leaf is handed out. */
export async function recordLeafNotAfterLocked(dir: string, notAfter: number): Promise<void> {
  const before = await readRecorded(dir);
  if (before.leavesUntil && Date.parse(before.leavesUntil) >= notAfter) return;
  await writeRecorded(dir, { ...before, leavesUntil: new Date(notAfter).toISOString() });
}

/**
 * When the next step of a root rotation is allowed (epoch ms): activate once every leaf issued
 * before `root add` has expired (each sidecar has renewed by then, and got the new root with
 * its new leaf); retire once every leaf signed under the old root has. Each is fixed when its
 * step starts; a rotation begun before these were recorded is measured from the current file.
 */
export function nextRotationStepAt(rotation: RootRotation, lifetime: LeafLifetime): number {
  if (rotation.step === 'added') {
    return rotation.activateFrom ? Date.parse(rotation.activateFrom) : leavesExpireBy(lifetime, Date.parse(rotation.addedAt));
  }
  if (rotation.retireFrom) return Date.parse(rotation.retireFrom);
  return leavesExpireBy({ ...lifetime, maxTtlMs: rotation.leafMaxTtlMs ?? lifetime.maxTtlMs }, Date.parse(rotation.activatedAt ?? ''));
}

// The running CA's view of its folder: the Authority it signs with now, reloaded when the
// folder changes. Every command that changes the CA writes state.json last; before each request
// the server compares state.json's identity (one stat) with the one it loaded, so a rotation
// takes effect from the very next signing, with no signal needed. A reload that fails keeps
// the running material. Also rotates the issuer by itself when
// issuerRotation is configured (by the wall clock: a host suspended and resumed, or a clock
// stepped ahead, rotates within 30 s of it, see wall-clock-timer.ts), and keeps the expiry
// gauges current.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';
import { Authority, ISSUER_FUTURE_TOLERANCE_MS, type AuthorityLimits } from './authority.js';
import { requireFinishedInit, requirePrivateCaFolder, stateFingerprint } from './ca-state.js';
import { rotateIssuer } from './lifecycle.js';
import { loadCaMaterial } from './store.js';
import { LockBusyError, withCaLock, type LockWait } from './folder-lock.js';
import { TokenKeys } from './token-keys.js';
import { TokenLedger } from './token-ledger.js';
import { CLOCK_JUMP_MS, clockJumpMessage, WallClockTimer } from '../wall-clock-timer.js';

export interface IssuerRotationPolicy {
  /** Rotate when the signing issuer has less than this left. */
  readonly beforeMs: number;
  /** Lifetime of the issuers it makes. */
  readonly ttlMs: number;
}

export interface CaRuntimeOptions {
  readonly dir: string;
  readonly trustDomain?: string;
  readonly limits: AuthorityLimits;
  readonly issuerRotation?: IssuerRotationPolicy;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/** After a failed automatic rotation, try again this much later. */
const ROTATION_RETRY_MS = 60_000;

/** How long a reload that must write (a first token key, a crashed issuer switch) waits for the folder's lock. */
export const RELOAD_LOCK_WAIT_MS = 1_000;
/** After the lock held a reload off: when a request tries it again. */
export const RELOAD_LOCK_RETRY_MS = 5_000;

export class CaRuntime extends EventEmitter<{ reloaded: [authority: Authority] }> {
  private authority: Authority;
  private fingerprint: string;
  private reloading: Promise<Authority> | undefined;
  private readonly rotationTimer = new WallClockTimer({
    unref: true,
    onJump: (jumpMs, due) => {
      if (jumpMs >= CLOCK_JUMP_MS) this.options.logger?.warn({ jumpMs: Math.round(jumpMs) }, clockJumpMessage(jumpMs, 'issuer rotation', due));
    },
  });
  /** An automatic rotation under way: close() waits for it, so no write outlives the server. */
  private rotating: Promise<void> | undefined;
  /** performance.now() of the last rotation started for an issuer found in the future. */
  private futureRotationTriedAt = -Infinity;
  /** performance.now() before which a reload the lock held off is not tried again. */
  private lockRetryAt: number | undefined;
  private closed = false;

  private constructor(private readonly options: CaRuntimeOptions, authority: Authority, fingerprint: string, private readonly ledger: TokenLedger) {
    super();
    this.authority = authority;
    this.fingerprint = fingerprint;
  }

  static async open(options: CaRuntimeOptions): Promise<CaRuntime> {
    // the folder judged first: a `dir` that is a file, a loop or another user's is one line
    // saying so, not the ledger's read error (a review)
    await requirePrivateCaFolder(options.dir);
    const ledger = await TokenLedger.open(options.dir);
    const fingerprint = await stateFingerprint(options.dir);
    const runtime = new CaRuntime(options, await CaRuntime.build(options, ledger), fingerprint, ledger);
    runtime.loaded();
    // an issuer already due (it may have expired while the CA was down) is rotated before the
    // server builds its own certificate from it: an expired one would fail the start
    const policy = options.issuerRotation;
    if (policy && issuerDue(runtime.authority, policy, Date.now())) {
      runtime.rotationTimer.cancel();
      runtime.runRotation(policy);
      await runtime.rotating;
    }
    return runtime;
  }

  /** `lockWait`: a reload's, short (RELOAD_LOCK_WAIT_MS): requests wait for it (fresh()). */
  private static async build(options: CaRuntimeOptions, ledger: TokenLedger, lockWait?: LockWait): Promise<Authority> {
    // before TokenKeys.load, which would make token keys in a folder an init is remaking
    await requireFinishedInit(options.dir);
    const [material, tokenKeys] = await Promise.all([loadCaMaterial(options.dir, options.trustDomain, true), TokenKeys.read(options.dir)]);
    if (tokenKeys !== undefined && material.switchPending !== true) return new Authority(material, ledger, options.limits, tokenKeys);
    // a first token key to make (a folder made before them), or an issuer switch a crash stopped
    // halfway to finish: writes, so under the folder's lock, as every command that writes (read
    // as they stood, a ca token or a rotation beside this start wrote a key beside another's list)
    return withCaLock(
      options.dir,
      async () => {
        const [locked, keys] = await Promise.all([loadCaMaterial(options.dir, options.trustDomain), TokenKeys.load(options.dir)]);
        return new Authority(locked, ledger, options.limits, keys);
      },
      lockWait,
    );
  }

  /** The authority as last loaded, without looking at the folder. */
  current(): Authority {
    return this.authority;
  }

  /** The authority, reloaded first if the folder changed since the last look. */
  async fresh(): Promise<Authority> {
    this.rotateIssuerFromTheFuture();
    if (this.reloading) return this.reloading;
    // a reload the folder's lock held off is tried again once its wait is over, not per request
    if (this.lockRetryAt !== undefined && performance.now() < this.lockRetryAt) return this.authority;
    if ((await stateFingerprint(this.options.dir)) === this.fingerprint) return this.authority;
    return this.reload();
  }

  /** Reloads now; a failure is logged and the running material kept. */
  reload(): Promise<Authority> {
    this.reloading ??= this.reloadOnce().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<Authority> {
    // read before loading: a change during the load is seen by the next look
    const fingerprint = await stateFingerprint(this.options.dir);
    try {
      // the lock waited for briefly: every request waits for this (fresh()), and a failed reload
      // keeps the running material (10 s held /v1/sign, /v1/bundle and /metrics while a
      // rotation command held the folder; the change it makes is loaded once it is done)
      this.authority = await CaRuntime.build(this.options, this.ledger, { until: performance.now() + RELOAD_LOCK_WAIT_MS });
    } catch (err) {
      this.options.logger?.error({ dir: this.options.dir }, `reloading the CA failed, still signing with issuer serial ${this.serial()}: ${describeError(err)}`);
      // the lock held by another command: tried again in RELOAD_LOCK_RETRY_MS, the folder as not
      // yet looked at (the holder may change nothing in state.json, and a change seen then
      // stayed unloaded for good: a replaced issuer signing on). Any other failure: not retried
      // on every request; the next change is
      if (err instanceof LockBusyError) this.lockRetryAt = performance.now() + RELOAD_LOCK_RETRY_MS;
      else this.fingerprint = fingerprint;
      return this.authority;
    }
    this.lockRetryAt = undefined;
    this.fingerprint = fingerprint;
    this.loaded();
    this.options.logger?.info({ issuerSerial: this.serial(), roots: this.authority.material.rootsByRole.map((r) => r.role), generation: this.authority.material.state.generation }, 'CA reloaded');
    this.emit('reloaded', this.authority);
    return this.authority;
  }

  private serial(): string {
    return this.authority.material.issuerCert.serialNumber.toLowerCase();
  }

  private loaded(): void {
    const { material } = this.authority;
    const metrics = this.options.metrics;
    if (metrics) {
      metrics.caIssuerExpiry.set(Date.parse(material.issuerCert.validTo) / 1000);
      metrics.caRootExpiry.reset();
      for (const root of material.rootsByRole) metrics.caRootExpiry.labels(root.role).set(Date.parse(root.cert.validTo) / 1000);
    }
    this.scheduleIssuerRotation();
  }

  /**
   * An issuer found starting more than a day ahead (the clock stepped back since it was made):
   * rotated now. The rotation timer waits for the issuer's end, which a step back only moves
   * further away; this look comes with every request and handshake (fresh()).
   */
  private rotateIssuerFromTheFuture(): void {
    const policy = this.options.issuerRotation;
    // a rotation that fails is tried again on its own timer, not with every request
    if (!policy || this.closed || this.rotating !== undefined || performance.now() - this.futureRotationTriedAt < ROTATION_RETRY_MS) return;
    if (this.authority.issuerStartsMs <= Date.now() + ISSUER_FUTURE_TOLERANCE_MS) return;
    this.futureRotationTriedAt = performance.now();
    this.rotationTimer.cancel();
    this.runRotation(policy);
  }

  private scheduleIssuerRotation(): void {
    const policy = this.options.issuerRotation;
    if (!policy || this.closed) return;
    const due = Date.parse(this.authority.material.issuerCert.validTo) - policy.beforeMs;
    this.rotationTimer.set(due, () => this.runRotation(policy));
  }

  private runRotation(policy: IssuerRotationPolicy): void {
    if (this.closed) return;
    const run = this.rotateIfDue(policy).finally(() => {
      if (this.rotating === run) this.rotating = undefined;
    });
    this.rotating = run;
  }

  private async rotateIfDue(policy: IssuerRotationPolicy): Promise<void> {
    const { material } = this.authority;
    const now = Date.now();
    if (!issuerDue(this.authority, policy, now)) return this.scheduleIssuerRotation();
    const active = material.rootsByRole.find((r) => r.role === 'active');
    // an issuer capped by its root would be due again at once: only a new root helps
    if (active && Date.parse(active.cert.validTo) - now <= policy.beforeMs) {
      this.options.logger?.error({ rootNotAfter: active.cert.validTo }, 'the issuer is due for rotation but the root expires first: rotate the root (meshcar ca root add, activate, retire)');
      return;
    }
    try {
      const rotated = await rotateIssuer(this.options.dir, { lifetimeMs: policy.ttlMs });
      this.options.logger?.info({ event: 'ca.issuer_rotated', automatic: true, issuerSerial: rotated.issuer.serialNumber.toLowerCase(), notAfter: new Date(rotated.issuer.validTo).toISOString() }, 'issuer rotated automatically');
      await this.reload();
    } catch (err) {
      this.options.logger?.error({ retryInMs: ROTATION_RETRY_MS }, `automatic issuer rotation failed: ${describeError(err)}`);
      if (this.closed) return;
      this.rotationTimer.set(Date.now() + ROTATION_RETRY_MS, () => this.runRotation(policy));
    }
  }

  /** Stops rotating; resolves once a rotation already under way has written its last file. */
  async close(): Promise<void> {
    this.closed = true;
    this.rotationTimer.cancel();
    await this.rotating;
  }
}

/**
 * Whether the signing issuer is due for rotation: less than `before` left, or made under a clock
 * that ran ahead (it starts in the future: no leaf under it would verify).
 */
function issuerDue(authority: Authority, policy: IssuerRotationPolicy, now: number): boolean {
  return Date.parse(authority.material.issuerCert.validTo) - now <= policy.beforeMs || authority.issuerStartsMs > now + ISSUER_FUTURE_TOLERANCE_MS;
}

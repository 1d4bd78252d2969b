// How long an open upstream session may carry requests: while the upstream's certificate path
// it was accepted on (its full handshake's, or that of the TLS ticket it resumed) is within its
// dates and still chains to our trust bundle. Node checks the upstream once, at the handshake;
// a session lives up to its maximum age (10 min) and its requests went on to an upstream whose
// SVID had expired meanwhile (its renewals failing), or whose root a rotation's retire step (or
// an operator's new bundle file) had just removed. The inbound cuts its callers' connections
// at their expiry (connection-lifetime.ts); this is the outbound's side of the same rule.
//
// Some time before the path expires (a tenth of its length, at least a second) the session
// takes no new requests and closes once those in flight are done, so a healthy upstream that
// renewed meanwhile is dialled again without a request lost; at the expiry whatever is still
// open on it is cut. A bundle change cuts at once the sessions whose path no longer reaches a
// root the new bundle holds. One wall-clock timer per session, nothing per request. A bundle
// that changed while the session was still dialling (or a tunnel's upgrade still answering) was
// never seen by a guard: a session catches up at adoption, a tunnel before its 101 (a review).

import { X509Certificate } from 'node:crypto';
import { bundleRoots, chainsToRoots } from '../pki/chain-to-roots.js';
import { WallClockTimer } from '../wall-clock-timer.js';
import { upstreamOrigin, type Origin } from './ticket-validity.js';

/** What a guard does to its session. */
export interface SessionEnds {
  /** No new requests; those in flight finish. */
  retire(): void;
  /** Ends it now, what is in flight included; `why` says so in words. */
  cut(why: string): void;
}

/** The trust bundle now in force: its PEM (IdentityTls.anchorsPem) and its roots, parsed once for all sessions. */
export interface TrustNow {
  readonly anchorsPem: string;
  readonly roots: readonly X509Certificate[];
}

const MIN_RETIRE_MARGIN_MS = 1_000;

export class UpstreamPathGuard {
  private readonly timer = new WallClockTimer({ unref: true });
  private retired = false;
  private stopped = false;

  private constructor(private readonly origin: Origin, private readonly ends: SessionEnds) {
    this.arm();
  }

  /** A guard for the session on `socket` (the node codec's proxy of it will do); undefined if its path is unknown. */
  static watch(socket: unknown, ends: SessionEnds): UpstreamPathGuard | undefined {
    const origin = upstreamOrigin(socket);
    return origin && new UpstreamPathGuard(origin, ends);
  }

  /** The trust bundle changed: a session whose upstream no longer chains to it is cut. */
  trustChanged(trust: TrustNow): void {
    if (this.stopped) return;
    if (this.origin.material?.anchorsPem === trust.anchorsPem) return;
    if (originChains(this.origin, trust.roots)) return;
    this.revoke("the upstream's certificate no longer chains to a root of the trust bundle");
  }

  /**
   * The session was dialled under an earlier bundle than `anchorsPem`, the one in force now: the
   * change came during its dial, before this guard existed, so it is checked now (parsing the
   * bundle happens only then).
   */
  catchUp(anchorsPem: string): void {
    if (this.stopped || this.origin.material?.anchorsPem === anchorsPem) return;
    this.trustChanged({ anchorsPem, roots: bundleRoots(anchorsPem) });
  }

  /** Neither the bundle nor the config vouches for this upstream any more (a reload changed its identity): cut now. */
  revoke(why: string): void {
    if (this.stopped) return;
    this.stop();
    this.ends.cut(why);
  }

  stop(): void {
    this.timer.cancel();
    this.stopped = true;
  }

  private arm(): void {
    const { notBeforeMs, notAfterMs } = this.origin.window!;
    const length = Number.isFinite(notBeforeMs) ? notAfterMs - notBeforeMs : 0;
    const retireAt = notAfterMs - Math.max(MIN_RETIRE_MARGIN_MS, length / 10);
    this.timer.set(this.retired ? notAfterMs : retireAt, this.fire);
  }

  // an arrow: handed to the timer without a bind per arming
  private readonly fire = (): void => {
    const { notAfterMs } = this.origin.window!;
    // an unreadable date (NaN) ends it too (ticket-validity.ts refuses such a path's tickets)
    if (!(Date.now() < notAfterMs)) {
      this.stop();
      return this.ends.cut(`the upstream's certificate path expired at ${new Date(notAfterMs).toISOString()}`);
    }
    if (!this.retired) {
      this.retired = true;
      this.ends.retire();
    }
    this.arm();
  };
}

/**
 * Whether the upstream on `socket` still chains to the bundle `anchorsPem` (the one in force
 * now): true when it was verified under that bundle, or its path is unknown (no guard watches
 * such a socket either).
 */
export function stillTrusted(socket: unknown, anchorsPem: string): boolean {
  const origin = upstreamOrigin(socket);
  if (origin === undefined || origin.material?.anchorsPem === anchorsPem) return true;
  return originChains(origin, bundleRoots(anchorsPem));
}

/** Whether the certificates the upstream presented reach one of `roots`. */
function originChains(origin: Origin, roots: readonly X509Certificate[]): boolean {
  const [leafDer, ...otherDers] = origin.presented;
  if (leafDer === undefined) return false;
  try {
    return chainsToRoots(new X509Certificate(leafDer), otherDers.map((der) => new X509Certificate(der)), roots);
  } catch {
    return false;
  }
}

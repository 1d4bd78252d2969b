// The sessions of a pool whose probe PING (session-keepalive.ts) has gone unanswered for a
// while with nothing read since it was sent: new requests for their endpoint wait for the
// probe's verdict instead of going onto them. Put on such a session, a request was cut with it
// when its path had died silently (a NAT entry or a middlebox dropped, the upstream fine): with
// one endpoint, every request of the probe's seconds, POSTs lost as 502. Held, they go out on
// the session once it answers, or over a new one once it is judged dead. Not a dial beside it:
// an upstream stalled for a moment (a pause, a busy event loop) refused the extra connections
// (inbound.limits.maxConnectionsPerCaller), hung them, was marked down for it, and kept every
// one it took to the session's maximum age. Not at once: a live peer ACKs within a round trip.
// And not while its bytes still come (a slow path with the ACK behind its data). Not past
// HOLD_LIMIT_MS: then onto the session, as before. Held requests count toward the circuit
// breaker's maxPending. Used by both codecs' pools (h2-session-pool.ts; pool-sessions.ts, before
// http2-wrapper's agent picks a session).

import { PROBE_MS, type Probing } from './session-keepalive.js';
import type { WaitToken } from './stream-wait.js';

/** How long a probe's PING goes unanswered, with nothing read, before its session takes no new stream. */
export const PROBED_SESSION_GRACE_MS = 250;

/** Requests held look again this often: bytes from the peer end their wait within a turn. */
const HOLD_TURN_MS = 250;

/**
 * How long one request is held at most: the probe's own window (a silent session's verdict
 * comes within it). Past it the request goes onto the session after all, as before this rule.
 * The failover's bound on a wait for a stream (4 connect timeouts) does not pass while a
 * request is held (stream-wait.ts holding): capped below it instead, at 2 connect timeouts,
 * the hold gave requests to a dead session again under a short connectTimeout (23 of 30 POSTs
 * lost at 1 s).
 */
export const HOLD_LIMIT_MS = PROBE_MS;

/** A request held since `heldSince` has had its HOLD_LIMIT_MS: it goes onto the session. */
export function holdSpent(heldSince: number): boolean {
  return performance.now() >= heldSince + HOLD_LIMIT_MS;
}

interface ProbeOut {
  /** When it starts to hold requests back. */
  readonly holdsFrom: number;
  /** Nothing read from the peer since the probe (or its last window) began. */
  readonly silent: () => boolean;
  /** Held requests wait on this: the probe's end, or a bounded turn (they look again). */
  settled?: Promise<void>;
  wake?: () => void;
  timer?: NodeJS.Timeout;
}

export class ProbedSessions<S> {
  private readonly out = new Map<S, ProbeOut>();

  /** The keepalive's probing hook for `session` (`silent`: read since the probe?); `endpoint` is told too (balancer.ts countProbes). */
  hook(session: S, endpoint: Probing, silent: () => boolean): Probing {
    return (isOut) => {
      endpoint(isOut);
      // told once the probe ends, the session's close included (the keepalive's stop)
      if (isOut) this.out.set(session, { holdsFrom: performance.now() + PROBED_SESSION_GRACE_MS, silent });
      else this.end(session);
    };
  }

  /** `session` takes no new stream now. Costs a size check while no probe is out. */
  skips(session: S): boolean {
    if (this.out.size === 0) return false;
    const probe = this.out.get(session);
    return probe !== undefined && performance.now() >= probe.holdsFrom && probe.silent();
  }

  /**
   * Resolves when `session`'s probe ends, or after a turn of HOLD_TURN_MS, when the held look
   * again (the peer's bytes may have come back, their own wait may be up): one promise and one
   * timer per probed session, whatever waits on it.
   */
  settled(session: S): Promise<void> {
    const probe = this.out.get(session);
    if (probe === undefined) return Promise.resolve();
    probe.settled ??= new Promise<void>((resolve) => {
      probe.wake = resolve;
      probe.timer = setTimeout(() => this.wakeHeld(probe), HOLD_TURN_MS);
      probe.timer.unref();
    });
    return probe.settled;
  }

  /** One turn of a request's hold on `session`: its wait's bound does not pass meanwhile (stream-wait.ts). */
  async holdTurn(session: S, wait: WaitToken | undefined): Promise<void> {
    wait?.holding?.(true);
    await this.settled(session);
    wait?.holding?.(false);
  }

  private end(session: S): void {
    const probe = this.out.get(session);
    if (probe === undefined) return;
    this.out.delete(session);
    this.wakeHeld(probe);
  }

  private wakeHeld(probe: ProbeOut): void {
    if (probe.timer !== undefined) clearTimeout(probe.timer);
    const wake = probe.wake;
    probe.settled = probe.wake = probe.timer = undefined;
    wake?.();
  }
}

// The sessions of a pool whose probe PING (session-keepalive.ts) has gone unanswered for a
// while: they take no new stream until the probe ends, and a new session is dialled beside them.
// Left to take them, a session whose path died silently (a NAT entry or a middlebox dropped, the
// upstream fine) drew every request of the probe's seconds and cut them with it, POSTs as 502.
// Not at once: a live peer answers within a round trip, and a request in that window would dial
// a session kept to its maximum age (a quiet long poll is probed every few seconds, then once
// an interval). Used by the meshcar codec's pool (h2-session-pool.ts).

import type { Probing } from './session-keepalive.js';

/** How long a probe's PING goes unanswered before its session takes no new stream. */
export const PROBED_SESSION_GRACE_MS = 250;

export class ProbedSessions<S> {
  /** Sessions with a probe out, and when they stop taking new streams. */
  private readonly since = new Map<S, number>();

  /** The keepalive's probing hook for `session`; `endpoint` is told too (balancer.ts countProbes). */
  hook(session: S, endpoint: Probing): Probing {
    return (out) => {
      endpoint(out);
      // told once the probe ends, the session's close included (the keepalive's stop)
      if (out) this.since.set(session, performance.now() + PROBED_SESSION_GRACE_MS);
      else this.since.delete(session);
    };
  }

  /** `session` takes no new stream now. Costs a size check while no probe is out. */
  skips(session: S): boolean {
    if (this.since.size === 0) return false;
    const from = this.since.get(session);
    return from !== undefined && performance.now() >= from;
  }
}

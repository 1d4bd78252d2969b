// A request that waited out a deadline unanswered (its head deadline, the app's own, or the
// idle timeout) has its session PINGed (session-keepalive.ts probeSession): a session that no
// longer works (a path dropped silently; Node's core http2 having given up on a peer that broke
// the protocol, without telling us) is destroyed within seconds of the first such request, not
// after two keepalive intervals of requests sent into it. A live session answers and nothing
// happens: a slow upstream is no dead one. At most one probe per session is out at a time.

import { sessionOf } from './goaway-refused.js';
import { probeSession } from './session-keepalive.js';
import { meshcarConnectionOf, type UpstreamStream } from './upstream-stream.js';

/** Probes the session `up` was made on (either codec). */
export function probeSessionOf(up: UpstreamStream): void {
  const session = meshcarConnectionOf(up) ?? sessionOf(up);
  if (session !== undefined) probeSession(session);
}

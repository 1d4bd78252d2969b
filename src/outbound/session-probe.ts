// A request that waited out a deadline unanswered (its head deadline, the app's own, or the
// idle timeout) has its session PINGed (session-keepalive.ts probeSession): a session that no
// longer works (a path dropped silently; Node's core http2 having given up on a peer that broke
// the protocol, without telling us) is destroyed within seconds of the first such request, not
// after two keepalive intervals of requests sent into it. A live session answers and nothing
// happens: a slow upstream is no dead one. At most one probe per session is out at a time.

import type { H2Stream } from '../h2/index.js';
import { sessionOf } from './goaway-refused.js';
import { probeSession } from './session-keepalive.js';
import type { UpstreamStream } from './upstream-stream.js';

/** Probes the session `up` was made on (either codec). */
export function probeSessionOf(up: UpstreamStream): void {
  // core http2 streams have `pending`; src/h2's carry their connection as `host`
  const session = 'pending' in up ? sessionOf(up) : (up as unknown as H2Stream).host;
  if (session !== undefined) probeSession(session);
}

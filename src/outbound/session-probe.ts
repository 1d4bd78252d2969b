// A request that waited out a deadline unanswered (its head deadline, the app's own, or the
// idle timeout) has its session PINGed (session-keepalive.ts probeSession): a session that no
// longer works (a path dropped silently; Node's core http2 having given up on a peer that broke
// the protocol, without telling us) is destroyed within seconds of the first such request, not
// after two keepalive intervals of requests sent into it. A live session answers and nothing
// happens: a slow upstream is no dead one. At most one probe per session is out at a time.
// A request whole on its stream starts the session's silence watch (watchAnswersOf), which
// probes a session that reads nothing while requests wait, before any deadline passes.

import { sessionOf } from './goaway-refused.js';
import { deadSessionWhy, probeSession, watchAnswers } from './session-keepalive.js';
import { meshcarConnectionOf, type UpstreamStream } from './upstream-stream.js';

/** Probes the session `up` was made on (either codec). */
export function probeSessionOf(up: UpstreamStream): void {
  const session = sessionUnder(up);
  if (session !== undefined) probeSession(session);
}

/** Starts the silence watch of the session `up` was made on (either codec), unless it runs. */
export function watchAnswersOf(up: UpstreamStream): void {
  const session = sessionUnder(up);
  if (session !== undefined) watchAnswers(session);
}

/** What the session `up` was made on missed, if its keepalive declared it dead (and so cut `up`). */
export function silentSessionWhy(up: UpstreamStream): string | undefined {
  const session = sessionUnder(up);
  return session === undefined ? undefined : deadSessionWhy(session);
}

function sessionUnder(up: UpstreamStream): object | undefined {
  return meshcarConnectionOf(up) ?? sessionOf(up);
}

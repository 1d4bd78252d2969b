// An app's h2c connection with no stream open for the keep-alive time is closed (GOAWAY, as at
// drain), as an idle HTTP/1.1 keep-alive connection is (node:http's keepAliveTimeout, 65 s).
// Without it an app that opens h2c connections and forgets them holds a descriptor and a
// session each until the sidecar stops. Node's session timeout fires after that long with no
// frame either way; a session that still has a stream open then (a quiet gRPC watch) is left
// alone, and the timer runs again from its next frame. One timer per connection, Node's own
// (no wake-up while frames flow, none at all once it has closed). The open streams are kept
// (not only counted) so a drain that runs out of time can end each gRPC call it cuts with a
// status (drain-grpc.ts). The timer is cleared on the way into the session's destroy(), and
// before Node's own handling of its socket's close: Node 20 leaves it armed on both ways out,
// holding each closed session for the whole keep-alive time (idle-timer-release.ts).

import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { clearIdleTimerOnDestroy } from '../http/idle-timer-release.js';

const kOpen = Symbol('meshcar.openStreams');
const kCountedOn = Symbol('meshcar.countedOn');
type Counted = ServerHttp2Session & { [kOpen]?: Set<ServerHttp2Stream> };
// the stream's session, kept: Node clears stream.session when the stream is destroyed, before 'close'
type CountedStream = ServerHttp2Stream & { [kCountedOn]?: Counted };

/** Watches `session`: closed gracefully once idle `ms` with no stream open. */
export function closeWhenIdle(session: ServerHttp2Session, ms: number): void {
  (session as Counted)[kOpen] = new Set();
  // the callback setTimeout takes is a once listener: a timeout passed over (a stream open)
  // would be the last one heard, so the 'timeout' event is listened to for good
  session.setTimeout(ms);
  session.on('timeout', onSessionTimeout);
  clearIdleTimerOnDestroy(session);
  // a socket that closes under a stream still open ends the session without destroy() (Node's
  // socketOnClose marks it destroyed itself): cleared before that, while setTimeout(0) works;
  // else each such session was held for the keep-alive time (the leak review)
  session.socket.prependListener('close', () => session.setTimeout(0));
}

function onSessionTimeout(this: Counted): void {
  if ((this[kOpen]?.size ?? 0) === 0 && !this.closed && !this.destroyed) this.close();
}

/** The streams open on `session` (counted by countOpenStream). */
export function openStreams(session: ServerHttp2Session): number {
  return (session as Counted)[kOpen]?.size ?? 0;
}

/** The streams open on `session` now (a copy: ending one while iterating is safe). */
export function streamsOpenOn(session: ServerHttp2Session): ServerHttp2Stream[] {
  return [...((session as Counted)[kOpen] ?? [])];
}

/** Counts `stream` as open on its session until it closes. */
export function countOpenStream(stream: ServerHttp2Stream): void {
  const session = stream.session as Counted | undefined;
  if (session === undefined) return;
  (session[kOpen] ??= new Set()).add(stream);
  (stream as CountedStream)[kCountedOn] = session;
  stream.once('close', onStreamClose);
}

function onStreamClose(this: CountedStream): void {
  const session = this[kCountedOn];
  session?.[kOpen]?.delete(this);
  this[kCountedOn] = undefined;
}

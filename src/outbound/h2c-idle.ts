// An app's h2c connection with no stream open for the keep-alive time is closed (GOAWAY, as at
// drain), as an idle HTTP/1.1 keep-alive connection is (node:http's keepAliveTimeout, 65 s).
// Without it an app that opens h2c connections and forgets them holds a descriptor and a
// session each until the sidecar stops. Node's session timeout fires after that long with no
// frame either way; a session that still has a stream open then (a quiet gRPC watch) is left
// alone, and the timer runs again from its next frame. One timer per connection, Node's own
// (no wake-up while frames flow, none at all once it has closed).

import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';

const kOpen = Symbol('meshcar.openStreams');
const kCountedOn = Symbol('meshcar.countedOn');
type Counted = ServerHttp2Session & { [kOpen]?: number };
// the stream's session, kept: Node clears stream.session when the stream is destroyed, before 'close'
type CountedStream = ServerHttp2Stream & { [kCountedOn]?: Counted };

/** Watches `session`: closed gracefully once idle `ms` with no stream open. */
export function closeWhenIdle(session: ServerHttp2Session, ms: number): void {
  (session as Counted)[kOpen] = 0;
  // the callback setTimeout takes is a once listener: a timeout passed over (a stream open)
  // would be the last one heard, so the 'timeout' event is listened to for good
  session.setTimeout(ms);
  session.on('timeout', onSessionTimeout);
}

function onSessionTimeout(this: Counted): void {
  if ((this[kOpen] ?? 0) === 0 && !this.closed && !this.destroyed) this.close();
}

/** The streams open on `session` (counted by countOpenStream). */
export function openStreams(session: ServerHttp2Session): number {
  return (session as Counted)[kOpen] ?? 0;
}

/** Counts `stream` as open on its session until it closes. */
export function countOpenStream(stream: ServerHttp2Stream): void {
  const session = stream.session as Counted | undefined;
  if (session === undefined) return;
  session[kOpen] = (session[kOpen] ?? 0) + 1;
  (stream as CountedStream)[kCountedOn] = session;
  stream.once('close', onStreamClose);
}

function onStreamClose(this: CountedStream): void {
  const session = this[kCountedOn];
  if (session !== undefined && session[kOpen] !== undefined) session[kOpen] -= 1;
  this[kCountedOn] = undefined;
}

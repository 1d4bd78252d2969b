// http2.codec node: a caller's session that has gone silent is asked for a PING, and closed if
// none comes back. nghttp2 answers some connection errors of the caller (an HPACK error, DATA on
// stream 0, DATA after END_STREAM) with GOAWAY alone: it then ignores all input, Node stops
// reading the socket and tells JavaScript nothing, so the connection stayed open, counted
// against maxConnectionsPerCaller, until the session's maximum age (10 min), even after the
// caller had closed its end (the close is never read). The meshcar codec closes such a
// connection at once. Here: a session from which nothing was read for `idleMs`, with nothing
// of ours waiting to go out, gets a PING; no answer within `timeoutMs` and it is destroyed. A
// live caller answers within a round trip (one PING per idle interval is all it costs); a
// session nghttp2 ended never sends the PING, and a caller that vanished never answers it. A
// caller that does not read what we send is left to the requests' own timeouts (nothing is
// probed while our frames wait for it).

import type { ServerHttp2Session } from 'node:http2';
import type { Logger } from 'pino';

export interface SessionProbeTimes {
  /** Nothing read from the caller for this long: a PING is sent. */
  readonly idleMs: number;
  /** Time the caller has to answer it before the session is destroyed. */
  readonly timeoutMs: number;
}

export const DEFAULT_SESSION_PROBE: SessionProbeTimes = Object.freeze({ idleMs: 30_000, timeoutMs: 10_000 });

/** Starts probing `session` until it closes. */
export function probeSilentSession(session: ServerHttp2Session, times: SessionProbeTimes, logger: Logger): void {
  let lastRead = bytesRead(session);
  let waiting: NodeJS.Timeout | undefined;
  const tick = setInterval(() => {
    if (session.destroyed || waiting !== undefined) return;
    const read = bytesRead(session);
    const silent = read === lastRead;
    lastRead = read;
    // frames of ours still queued: the caller is slow to read, not gone (the requests' timeouts apply)
    if (!silent || (session.state.outboundQueueSize ?? 0) > 0) return;
    waiting = setTimeout(() => {
      if (session.destroyed) return;
      logger.debug({ remote: remoteOf(session), timeoutMs: times.timeoutMs }, 'inbound HTTP/2 session closed: the caller answered no PING (gone, or its session ended on a connection error)');
      session.destroy();
    }, times.timeoutMs);
    waiting.unref();
    const answered = (err: Error | null) => {
      clearTimeout(waiting);
      waiting = undefined;
      if (err === null) lastRead = bytesRead(session);
    };
    try {
      if (!session.ping(answered)) answered(null);
    } catch {
      // the session went between the check and the PING
      answered(null);
    }
  }, times.idleMs);
  tick.unref();
  session.once('close', () => {
    clearInterval(tick);
    clearTimeout(waiting);
  });
}

/** Bytes read from the caller's socket so far (Node's session socket proxy throws once the session is gone). */
function bytesRead(session: ServerHttp2Session): number {
  try {
    return session.socket?.bytesRead ?? 0;
  } catch {
    return 0;
  }
}

function remoteOf(session: ServerHttp2Session): string | undefined {
  try {
    return session.socket?.remoteAddress;
  } catch {
    return undefined;
  }
}

// http2.codec node: a caller's session that has gone silent is asked for a PING, and closed if
// none comes back. nghttp2 answers some connection errors of the caller (an HPACK error, DATA on
// stream 0, DATA after END_STREAM) with GOAWAY alone: it then ignores all input, Node stops
// reading the socket and tells JavaScript nothing, so the connection stayed open, counted
// against maxConnectionsPerCaller, until the session's maximum age (10 min), even after the
// caller had closed its end (the close is never read). The meshcar codec closes such a
// connection at once. Here: a session from which nothing was read for `idleMs` gets a PING; no
// answer within `timeoutMs` and the connection is cut, as Envoy's HTTP/2 connection keepalive
// does. A live caller answers within a round trip (one PING per idle interval is all it costs),
// also one whose streams wait on flow control (its HTTP/2 client reads the socket and answers
// PINGs while it holds back WINDOW_UPDATEs); a session nghttp2 ended never sends the PING, a
// caller that vanished never answers it, and neither does one that has stopped reading its
// socket altogether (it was held for good: a Node session's destroy waits for what is queued
// to be written before it ends the socket).

import { pingSent } from './node-ping-bytes.js';
import type { ServerHttp2Session } from 'node:http2';
import type { Logger } from 'pino';

export interface SessionProbeTimes {
  /** Nothing read from the caller for this long: a PING is sent. */
  readonly idleMs: number;
  /** Time the caller has to answer it before the connection is cut. */
  readonly timeoutMs: number;
}

export const DEFAULT_SESSION_PROBE: SessionProbeTimes = Object.freeze({ idleMs: 30_000, timeoutMs: 10_000 });

/** Starts probing `session` until it closes. */
export function probeSilentSession(session: ServerHttp2Session, times: SessionProbeTimes, logger: Logger, cut: () => void): void {
  let lastRead = bytesRead(session);
  let waiting: NodeJS.Timeout | undefined;
  const tick = setInterval(() => {
    if (session.destroyed || waiting !== undefined) return;
    const read = bytesRead(session);
    const silent = read === lastRead;
    lastRead = read;
    // Not "no streams open" nor "nothing of ours queued" as well: after such an error nghttp2
    // sends nothing more, so a stream's reset and its close never come, and its queue never empties
    if (!silent) return;
    waiting = setTimeout(() => {
      if (session.destroyed) return;
      logger.debug({ remote: remoteOf(session), timeoutMs: times.timeoutMs }, 'inbound HTTP/2 session closed: the caller answered no PING (gone, reading nothing, or its session ended on a connection error)');
      // the socket too: session.destroy() alone waits for our queued bytes to be written
      cut();
    }, times.timeoutMs);
    waiting.unref();
    const answered = (err: Error | null) => {
      clearTimeout(waiting);
      waiting = undefined;
      if (err === null) lastRead = bytesRead(session);
    };
    try {
      if (!session.ping(answered)) answered(null);
      else pingSent(session);
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

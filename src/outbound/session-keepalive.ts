// The keepalive of one upstream HTTP/2 session, for both codecs: a PING whenever nothing came
// from the peer for a whole interval, busy or not, and the session is destroyed if the ACK is
// not back by the next tick. An open stream is no proof of life: behind one quiet watch, SSE or
// gRPC stream, a connection that silently died (a NAT or conntrack entry dropped, a paused
// host) would take every new request to its deadline. Bytes read since the last tick (the
// socket's count, which either codec's reading moves) say the peer is there, so a session
// carrying traffic never PINGs; as Envoy's connection_keepalive, but without a timer per PING.

import type { Logger } from 'pino';

/** What the keepalive needs of a session (Node's ClientHttp2Session and src/h2's H2Connection). */
export interface KeepaliveSession {
  readonly destroyed: boolean;
  /** The socket under the session, read for its byte count only (net.Socket's bytesRead). */
  readonly socket: object | null | undefined;
  ping(callback: (err: Error | null) => void): unknown;
}

/**
 * Starts the keepalive; `dead` is called once when the peer missed a PING (or the PING failed).
 * Returns the interval timer (unref'd), to clear when the session closes.
 */
export function startKeepalive(session: KeepaliveSession, intervalMs: number, dead: (err: Error) => void): NodeJS.Timeout {
  let awaitingAck = false;
  let bytesAtTick = bytesReadOf(session);
  const timer = setInterval(() => {
    if (session.destroyed) return;
    if (awaitingAck) {
      awaitingAck = false;
      dead(new Error('the upstream did not answer a PING'));
      return;
    }
    const bytes = bytesReadOf(session);
    if (bytes !== bytesAtTick) {
      bytesAtTick = bytes; // heard from the peer within this interval
      return;
    }
    awaitingAck = true;
    session.ping((err) => {
      awaitingAck = false;
      if (err && !session.destroyed) dead(err);
    });
  }, intervalMs);
  timer.unref();
  return timer;
}

function bytesReadOf(session: KeepaliveSession): number {
  try {
    return (session.socket as { bytesRead?: number } | null | undefined)?.bytesRead ?? 0;
  } catch {
    return 0; // Node's session socket proxy throws once the session is gone
  }
}

/**
 * The warn line of a session the keepalive gave up on, for both codecs: a dead path (a dropped
 * NAT entry, a paused or unplugged host) is otherwise seen only as requests cut or slow, with
 * nothing naming the endpoint.
 */
export function warnDeadSession(logger: Logger, upstream: string, endpoint: string | undefined, inFlight: number, intervalMs: number): void {
  const cut = inFlight > 0 ? `; ${inFlight} request${inFlight === 1 ? '' : 's'} in flight on it cut` : '';
  logger.warn({ upstream, endpoint, inFlight }, `upstream session closed: ${endpoint ?? upstream} sent nothing for ${intervalMs} ms and did not answer a PING within ${intervalMs} ms more (the path or the peer is dead)${cut}`);
}

// What happens to one upstream HTTP/2 session between its first SETTINGS and its close:
// - GOAWAY from the peer: http2-wrapper does not notice that a session is closing (it checks
//   only `destroyed`) and would keep handing it requests that then fail; we mark it
//   gracefully closing, so streams in flight finish and new requests get a new session.
// - Maximum age (jittered ±10% so sessions opened together do not all roll at once): the
//   session is closed gracefully, so long-lived callers spread onto endpoints added since.
// - PING when the peer was silent for a whole interval, idle or busy: one that does not answer
//   by the next tick is gone (a silent network drop, a paused VM); the session is destroyed
//   before a request finds out the hard way (session-keepalive.ts).

import type { ClientHttp2Session } from 'node:http2';
import http2wrapper from 'http2-wrapper';
import { startKeepalive, type Probing } from './session-keepalive.js';
import { clearTimer } from '../timer-clear.js';

// http2-wrapper's own bookkeeping on each session (exported as statics, absent from its types)
const kCurrentStreamCount = (http2wrapper.Agent as unknown as { kCurrentStreamCount: symbol }).kCurrentStreamCount;
const kGracefullyClosing = (http2wrapper.Agent as unknown as { kGracefullyClosing: symbol }).kGracefullyClosing;

type PooledSession = ClientHttp2Session & { [key: symbol]: unknown };

export interface SessionPolicy {
  readonly maxSessionAgeMs: number;
  readonly pingIntervalMs: number;
}

export function activeStreams(session: ClientHttp2Session): number {
  return ((session as PooledSession)[kCurrentStreamCount] as number | undefined) ?? 0;
}

export function isGracefullyClosing(session: ClientHttp2Session): boolean {
  return (session as PooledSession)[kGracefullyClosing] === true || session.closed || session.destroyed;
}

/** No new streams; closes as soon as those in flight are done (http2-wrapper's own rule). */
export function closeGracefully(session: ClientHttp2Session): void {
  if (session.destroyed) return;
  (session as PooledSession)[kGracefullyClosing] = true;
  if (activeStreams(session) === 0) session.close();
}

/** Installs GOAWAY handling, max age and the keepalive PING on a new session; `onDead` is told what the session missed before it is destroyed. Timers never hold the process. */
export function manageSession(session: ClientHttp2Session, policy: SessionPolicy, onDead?: (why: string) => void, probing?: Probing): void {
  session.on('goaway', () => {
    // Node closes (NO_ERROR) or destroys (error code) the session itself; this only stops reuse
    (session as PooledSession)[kGracefullyClosing] = true;
  });

  const jitter = 0.9 + Math.random() * 0.2;
  const ageTimer = setTimeout(() => closeGracefully(session), Math.max(1, Math.round(policy.maxSessionAgeMs * jitter)));
  ageTimer.unref();

  // PING whenever the peer was silent for a whole interval, busy or not (session-keepalive.ts)
  const keepalive = startKeepalive(session, policy.pingIntervalMs, (err) => {
    if (session.destroyed) return;
    onDead?.(err.message);
    // what the streams cut with it are told (their 502s say it): "the upstream did not answer a PING ..."
    session.destroy(new Error(`the upstream ${err.message}`));
  }, () => activeStreams(session), probing);

  session.once('close', () => {
    clearTimer(ageTimer); // a jittered age, a list of its own (timer-clear.ts)
    keepalive.stop();
  });
}

// How long one verified inbound connection may live. Never past the moment the caller's
// certificate path expires: the identity it proved ends there, so the connection is destroyed
// then, requests in flight or not (HTTP/1.1 keep-alive and HTTP/2 alike); otherwise a
// connection opened just before expiry would go on serving an expired identity for as long
// as the caller keeps it busy. An HTTP/2 session also has a maximum age (jittered ±10%, as on
// the outbound side, so sessions opened together do not all roll at once): then it gets
// GOAWAY, takes no new streams, and closes once those in flight are done, and the caller
// connects again, proving a current certificate. One unref'd timer per connection for the
// expiry, and one for an HTTP/2 session's age; nothing per request. The expiry is a wall-clock
// instant: its timer is a WallClockTimer, so after a host suspended and resumed (or a clock
// stepped ahead) the connection ends within 30 s by the wall clock, not a whole timer's length
// later; the process's one ClockWatch looks at the clock for all connections together. The age
// is running time (a plain timer): on the wall clock, a clock stepped back an hour kept every
// session an hour past its age, and one stepped ahead retired them all at once. A WebSocket
// tunnel on it is cut with resets (tunnel-reset.ts).

import { isWindingDown, type CallerSession } from './caller-session.js';
import type { Socket } from 'node:net';
import { WallClockTimer } from '../wall-clock-timer.js';
import { clearTimer, MAX_TIMER_MS } from '../timer-clear.js';
import { destroyConnection } from '../http/tunnel-reset.js';

export interface LifetimeEvents {
  /** The certificate path has expired; the connection is destroyed right after. */
  readonly onExpired: () => void;
  /** HTTP/2: the session reached its maximum age; it is being closed gracefully. */
  readonly onRetired: () => void;
}

export class ConnectionLifetime {
  private readonly timer = new WallClockTimer({ unref: true });
  private session: CallerSession | undefined;
  private retireTimer: NodeJS.Timeout | undefined;

  /** Starts the clock on `socket`: destroyed at `expiresAtMs` (ms since the epoch) at the latest. */
  constructor(private readonly socket: Socket, private readonly expiresAtMs: number, private readonly events: LifetimeEvents) {
    this.timer.set(this.expiresAtMs, this.fire);
    socket.once('close', () => {
      this.timer.cancel();
      clearTimer(this.retireTimer);
    });
  }

  /** HTTP/2: the session on this socket is also retired (GOAWAY) after `maxAgeMs` of running time (at most 24 days: config). */
  limitSession(session: CallerSession, maxAgeMs: number): void {
    this.session = session;
    clearTimer(this.retireTimer);
    // jittered past the config's 24 days, the wait would pass setTimeout's 2^31-1 ms, which fires at once
    this.retireTimer = setTimeout(this.retire, Math.min(MAX_TIMER_MS, Math.max(1, Math.round(maxAgeMs * (0.9 + Math.random() * 0.2)))));
    this.retireTimer.unref();
  }

  /**
   * Ends the connection now: the session first (its last GOAWAY, best effort), then the socket.
   * A Node session's destroy() alone ends its socket gracefully, waiting for what is queued to
   * be written: toward a caller that reads nothing, for good.
   */
  cut(): void {
    this.session?.destroy();
    destroyConnection(this.socket);
  }

  // an arrow: handed to the timer without a bind (it runs once the wall clock reaches the expiry)
  private readonly fire = (): void => {
    if (this.socket.destroyed) return;
    clearTimer(this.retireTimer);
    this.events.onExpired();
    // the session's destroy sends a last GOAWAY (best effort) before the socket goes
    this.session?.destroy();
    // a WebSocket tunnel's connection is cut with resets on both its sides, as a drain that
    // runs out cuts it: destroyed plainly, the far app read a FIN as the calling app's clean
    // end, and the calling sidecar a half-close it carried on
    destroyConnection(this.socket);
  };

  private readonly retire = (): void => {
    const session = this.session;
    if (this.socket.destroyed || session === undefined || isWindingDown(session)) return;
    this.events.onRetired();
    // GOAWAY NO_ERROR naming the last stream taken: those finish, new ones go elsewhere
    session.close();
  };
}

// The keepalive of one upstream HTTP/2 session, for both codecs: a PING whenever nothing came
// from the peer for a whole interval, busy or not, and the session is destroyed if the ACK is
// not back by the next tick. An open stream is no proof of life: behind one quiet watch, SSE or
// gRPC stream, a connection that silently died (a NAT or conntrack entry dropped, a paused
// host) would take every new request to its deadline. Bytes read since the last tick (the
// socket's count, which either codec's reading moves) say the peer is there, so a session
// carrying traffic never PINGs; as Envoy's connection_keepalive, but without a timer per PING.
// A probe is a PING now, answered within PROBE_MS, asked in two cases. A request that timed
// out unanswered asks for one (probeSession). And a session that goes quiet while requests on it
// wait (watchAnswers, once a request is whole on it) is probed after STALL_MS of silence, not a
// whole interval or a request's timeout later: a path that died after a quiet spell otherwise
// took every request put on it to its 15 s timeout, and its endpoint, whose latency estimate had
// decayed while nothing came, drew most of them (20 of 33 beside a live one). A live peer ACKs
// within a round trip; its app may take as long as it likes. Each probe that the same silence
// follows doubles the wait for the next, and traffic of the peer's own, not the ACK of a PING of
// ours, sets it back (a long poll or a quiet stream is PINGed about 1, 5, 13 and 29 s into its
// silence, then about every 45 s beside the interval's PING at the default 30 s).
// A probe's PING may queue behind the peer's data on a slow path (a 1.5 s hiccup at 200 KB/s put
// 1.5-2.3 MB before it; at 80 KB/s three downloads put 1 MB before a timed-out request's): it is
// waited for as long as the peer's bytes keep coming, in PROBE_MS windows up to the interval, so
// only PROBE_MS with neither bytes nor ACK, or an interval of bytes without one, is a dead
// session. (Node's core http2 may stop taking a session's frames after it sent GOAWAY on a
// peer's protocol error while the peer still sends; such a session then lives at most that
// interval, and Node closes it once its streams end: cutting a live slow session's downloads
// was the worse error.)

import type { Logger } from 'pino';

/** What the keepalive needs of a session (Node's ClientHttp2Session and src/h2's H2Connection). */
export interface KeepaliveSession {
  readonly destroyed: boolean;
  /** The socket under the session, read for its byte count only (net.Socket's bytesRead). */
  readonly socket: object | null | undefined;
  ping(callback: (err: Error | null) => void): unknown;
}

/** Streams open on a session (each codec counts its own). */
export type OpenStreams = () => number;

/**
 * Told when a probe's PING goes out (true) and once when it is over (false): answered, judged
 * dead, or the session gone. The pool keeps new requests off the endpoint meanwhile: a path that
 * died drew every request sent in the probe's 5 s (the first 16 of a 20 req/s burst, POSTs
 * among them, cut with it), a live one answers within a round trip.
 */
export type Probing = (out: boolean) => void;

/** How long a probed session has to answer its PING (the inbound's probe of an h2c app's session waits as long). */
export const PROBE_MS = 5_000;

/** The silence a session with requests waiting keeps before its first probe (doubled while the silence goes on). */
export const STALL_MS = 1_000;

const KEEPALIVES = new WeakMap<object, Keepalive>();
/** Sessions the keepalive declared dead, and what they missed: the 502 of a request cut with one says it. */
const DECLARED_DEAD = new WeakMap<object, string>();

/** `session` (either codec's) has a probe out and read nothing since it (or its current window) began. */
export function silentSinceProbeOf(session: object): boolean {
  return KEEPALIVES.get(session)?.silentSinceProbe() === true;
}

/** What `session` missed, if its keepalive declared it dead (either codec's session). */
export function deadSessionWhy(session: object): string | undefined {
  return DECLARED_DEAD.get(session);
}

/** One session's keepalive: the interval's PING and, when asked, a probe. */
export class Keepalive {
  private awaitingAck = false;
  private bytesAtTick: number;
  private readonly timer: NodeJS.Timeout;
  private probeTimer: NodeJS.Timeout | undefined;
  // the watch of a session with requests waiting (watchAnswers): armed by a request, it re-arms
  // itself while streams are open, so a busy session has one timer a second, an idle one none
  private stallTimer: NodeJS.Timeout | undefined;
  private stallMs = STALL_MS;
  private bytesAtStall = 0;
  /** An ACK of ours came since the last check: bytes read then may be that alone, no word of the peer's own. */
  private ackInWindow = false;
  // the probe out: why, since when, the bytes read when it last looked, and how many PROBE_MS
  // windows it has waited
  private probeWhy = '';
  private probeSince = 0;
  private probeBytes = 0;
  private probeWindows = 0;
  /** `probing` was told of the probe out (and is told once when it ends). */
  private probeTold = false;
  private readonly onStall = (): void => this.stallCheck();
  private readonly onProbeDeadline = (): void => this.probeDeadline();
  private readonly onAck = (err: Error | null): void => {
    this.awaitingAck = false;
    this.ackInWindow = true;
    this.clearProbe();
    if (err && !this.session.destroyed) this.dead(new Error(`could not be PINGed (${err.message})`));
  };

  constructor(
    private readonly session: KeepaliveSession,
    private readonly intervalMs: number,
    private readonly onDead: (err: Error) => void,
    private readonly openStreams: OpenStreams,
    private readonly probing?: Probing,
  ) {
    this.bytesAtTick = bytesReadOf(session);
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
    KEEPALIVES.set(session, this);
  }

  private dead(err: Error): void {
    DECLARED_DEAD.set(this.session, err.message);
    this.onDead(err);
  }

  /** The interval: a PING unanswered since the last tick ends the session; silence since then sends one. */
  private tick(): void {
    if (this.session.destroyed) return;
    // a probe's PING (sent a moment ago, perhaps) is judged by the probe's own timer
    if (this.awaitingAck && this.probeTimer !== undefined) return;
    if (this.awaitingAck) {
      this.awaitingAck = false;
      this.clearProbe();
      this.dead(new Error(`sent nothing for ${this.intervalMs} ms and did not answer a PING within ${this.intervalMs} ms more`));
      return;
    }
    const bytes = bytesReadOf(this.session);
    if (bytes !== this.bytesAtTick) {
      this.bytesAtTick = bytes; // heard from the peer within this interval
      return;
    }
    if (cannotPing(this.session)) return;
    this.ping();
  }

  /**
   * A PING now (unless one is out), which must be answered within PROBE_MS (or the interval, if
   * shorter), a window extended while bytes from the peer still come, up to the interval (a PING
   * queued behind the peer's data); `after`: why it was sent.
   */
  probe(after = 'a request on it timed out'): void {
    if (this.session.destroyed || this.probeTimer !== undefined || cannotPing(this.session)) return;
    this.probeWhy = after;
    this.probeSince = performance.now();
    this.probeBytes = bytesReadOf(this.session);
    this.probeWindows = 1;
    this.armProbe();
    this.probeTold = true;
    this.probing?.(true);
    if (!this.awaitingAck) this.ping();
  }

  /** A probe is out and nothing was read from the peer since it (or its current window) began. */
  silentSinceProbe(): boolean {
    return this.probeTimer !== undefined && bytesReadOf(this.session) === this.probeBytes;
  }

  private armProbe(): void {
    this.probeTimer = setTimeout(this.onProbeDeadline, Math.min(PROBE_MS, this.intervalMs));
    this.probeTimer.unref();
  }

  private probeDeadline(): void {
    this.probeTimer = undefined;
    if (this.session.destroyed) {
      this.probeEnded();
      return;
    }
    const bytes = bytesReadOf(this.session);
    const reading = bytes !== this.probeBytes;
    if (reading && performance.now() - this.probeSince < this.intervalMs) {
      this.probeBytes = bytes; // the peer is still sending: its ACK may be behind what it sent
      this.probeWindows += 1;
      this.armProbe();
      return;
    }
    this.awaitingAck = false;
    this.probeEnded();
    const windowMs = Math.min(PROBE_MS, this.intervalMs);
    const withinMs = this.probeWindows * windowMs;
    const how = reading ? ` (the keepalive interval), though its data still came` : this.probeWindows > 1 ? `, its data stopped for the last ${windowMs} ms of it,` : '';
    this.dead(new Error(`did not answer a PING within ${withinMs} ms${how} after ${this.probeWhy}`));
  }

  /** A request is whole on the session and waits for its answer: the silence watch starts, unless it runs. */
  watchAnswers(): void {
    if (this.stallTimer !== undefined || this.session.destroyed) return;
    this.bytesAtStall = bytesReadOf(this.session);
    this.ackInWindow = false;
    this.armStall();
  }

  /** A window of the watch ended: silence with streams open is probed; the watch ends with the last stream. */
  private stallCheck(): void {
    this.stallTimer = undefined;
    const open = this.session.destroyed ? 0 : this.openStreams();
    if (open === 0) {
      this.stallMs = STALL_MS; // the next request starts a new watch
      return;
    }
    const bytes = bytesReadOf(this.session);
    if (bytes !== this.bytesAtStall) {
      // heard from the peer on its own, the silence is over; the ACK of a PING of ours (a probe's
      // or the interval's) says only that it lives, and a probe out is judging the session
      if (!this.ackInWindow && this.probeTimer === undefined) this.stallMs = STALL_MS;
      this.bytesAtStall = bytes;
    } else if (this.probeTimer === undefined) {
      this.probe(`${this.stallMs} ms in which nothing came while ${open} stream${open === 1 ? ' was' : 's were'} open on it`);
      this.stallMs = Math.min(this.stallMs * 2, this.intervalMs);
    }
    this.ackInWindow = false;
    this.armStall();
  }

  private armStall(): void {
    this.stallTimer = setTimeout(this.onStall, this.stallMs);
    this.stallTimer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.clearProbe();
    KEEPALIVES.delete(this.session);
  }

  private ping(): void {
    this.awaitingAck = true;
    try {
      this.session.ping(this.onAck);
    } catch (err) {
      this.onAck(err as Error); // a session closing under us: it cannot PING
    }
  }

  private clearProbe(): void {
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probeEnded();
  }

  /** The probe is over (answered, judged, or its session gone): `probing` hears it once. */
  private probeEnded(): void {
    if (!this.probeTold) return;
    this.probeTold = false;
    this.probing?.(false);
  }
}

/**
 * Starts the keepalive; `dead` is called once with what the peer missed (a PING, or the PING
 * failed); `openStreams` counts the session's streams (the silence watch runs while there are
 * any). Timers are unref'd; stop() the keepalive when the session closes.
 */
export function startKeepalive(session: KeepaliveSession, intervalMs: number, dead: (err: Error) => void, openStreams: OpenStreams, probing?: Probing): Keepalive {
  return new Keepalive(session, intervalMs, dead, openStreams, probing);
}

/** A request is whole on `session` (either codec's) and waits for its answer: watch the session for silence. */
export function watchAnswers(session: object): void {
  KEEPALIVES.get(session)?.watchAnswers();
}

/** Asks `session` (either codec's) to prove it is alive: a request on it timed out unanswered. */
export function probeSession(session: object): void {
  KEEPALIVES.get(session)?.probe();
}

/**
 * Node's core http2 cancels at once a PING on a session closing gracefully (the peer's
 * GOAWAY(NO_ERROR), a rolling restart; or our own close()): taken for a dead peer, that cut the
 * requests still finishing on it. Such a session is left to finish; its streams keep their
 * timeouts. src/h2's connections PING while closing (their `closed` is undefined).
 */
function cannotPing(session: KeepaliveSession): boolean {
  return (session as { closed?: unknown }).closed === true;
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
 * nothing naming the endpoint. `why`: what the peer missed (the keepalive's Error message).
 */
export function warnDeadSession(logger: Logger, upstream: string, endpoint: string | undefined, inFlight: number, why: string): void {
  const cut = inFlight > 0 ? `; ${inFlight} request${inFlight === 1 ? '' : 's'} in flight on it cut` : '';
  logger.warn({ upstream, endpoint, inFlight }, `upstream session closed: ${endpoint ?? upstream} ${why} (the path or the peer is dead)${cut}`);
}

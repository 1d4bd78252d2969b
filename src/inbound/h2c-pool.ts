// A few cleartext HTTP/2 sessions to the local app, multiplexing every forwarded request. A
// session is used until the app's stream limit (capped) is reached, then another is opened,
// up to a small maximum; past that the least busy one takes the stream (nghttp2 queues it).
// A session that closes, errors or receives GOAWAY leaves the pool at once, so the next
// request opens a fresh one: that is the reconnect. Node's client can also end a session
// without a word: on a protocol or compression error from the app (a header field over 64 KiB)
// it sends GOAWAY itself but neither closes nor tells, and every stream on it then hangs or is
// refused. A session that refuses a stream without having received a GOAWAY leaves the pool
// (closing once its streams are done), and one that does or whose stream timed out must answer
// a PING within PROBE_MS or is destroyed.

import http2, { type ClientHttp2Session } from 'node:http2';
import type { Logger } from 'pino';

export interface Lease {
  readonly session: ClientHttp2Session;
  /** Streams open on the session through this pool. */
  active: number;
  /** The app sent GOAWAY: its refusals are its own, not a dead session's. */
  goaway: boolean;
  /** A PING is out to see whether the session still lives. */
  probing: boolean;
  /** Out of the pool: no new stream goes there; it closes when its last stream is done. */
  retired: boolean;
}

/** How long a suspect session has to answer a PING (an app whose event loop is busy that long is as good as gone for new streams). */
const PROBE_MS = 5000;

export interface H2cPoolOptions {
  readonly maxSessions?: number;
  /** Streams per session before another is opened, even if the app allows more. */
  readonly streamsPerSession?: number;
  /** How long a suspect session has to answer a PING (default 5 s). */
  readonly probeMs?: number;
}

export class H2cSessionPool {
  private leases: Lease[] = [];
  private readonly maxSessions: number;
  private readonly streamsPerSession: number;
  private readonly probeMs: number;
  private closed = false;

  constructor(private readonly url: string, private readonly logger: Logger, options: H2cPoolOptions = {}) {
    this.maxSessions = options.maxSessions ?? 4;
    this.streamsPerSession = options.streamsPerSession ?? 100;
    this.probeMs = options.probeMs ?? PROBE_MS;
  }

  get sessions(): number {
    return this.leases.length;
  }

  /** A session for one more stream; the caller must call release() when the stream closes. */
  acquire(): Lease {
    let best: Lease | undefined;
    const leases = this.leases;
    for (let i = 0; i < leases.length; i++) {
      const lease = leases[i] as Lease;
      if (lease.session.closed || lease.session.destroyed) continue; // its 'close' is on the way
      if (lease.active < this.limitOf(lease)) {
        lease.active++;
        return lease;
      }
      if (best === undefined || lease.active < best.active) best = lease;
    }
    if (best === undefined || leases.length < this.maxSessions) best = this.open();
    best.active++;
    return best;
  }

  release(lease: Lease): void {
    // a retired session closes once its streams are done (Node's close() with streams still
    // open failed a healthy app's answer in flight), unless the app or a failure closed it
    if (--lease.active === 0 && lease.retired && !lease.session.closed) lease.session.close();
  }

  /**
   * A stream of this lease was refused (REFUSED_STREAM) though the app sent no GOAWAY: either
   * the app is over its stream limit (allowed: RFC 9113 §8.7), or Node's client ended the
   * session itself. Either way no new stream goes there: the session leaves the pool and closes
   * once its streams are done (a healthy one's answers still arrive), and a PING tells the two
   * apart (a dead one is destroyed, failing its hung streams at once).
   */
  refused(lease: Lease): void {
    if (lease.goaway) return;
    this.retire(lease);
    // its streams may all be done already (release() ran first): then it closes now
    if (lease.active === 0 && !lease.session.closed) lease.session.close();
    this.probe(lease);
  }

  /** A stream of this lease timed out unanswered: the session must answer a PING in time, or it goes. */
  probe(lease: Lease): void {
    const session = lease.session;
    if (lease.probing || session.destroyed) return;
    lease.probing = true;
    const timer = setTimeout(() => this.discard(lease, `it did not answer a PING within ${this.probeMs} ms after a request timed out or was refused`), this.probeMs);
    timer.unref(); // a probe never holds the process open (the session's socket does, while it lives)
    try {
      session.ping((err) => {
        clearTimeout(timer);
        lease.probing = false;
        if (err) this.discard(lease, `its PING failed (${err.message})`);
      });
    } catch (err) {
      clearTimeout(timer);
      this.discard(lease, `it cannot send a PING (${(err as Error).message})`);
    }
  }

  /** Drops a session that no longer works: its streams close (their exchanges fail now), and the next request opens another. */
  private discard(lease: Lease, why: string): void {
    this.retire(lease);
    if (lease.session.destroyed) return;
    this.logger.warn({ app: this.url }, `h2c session to the app dropped: ${why}`);
    lease.session.destroy();
  }

  private retire(lease: Lease): void {
    lease.retired = true;
    const index = this.leases.indexOf(lease);
    if (index !== -1) this.leases.splice(index, 1);
  }

  close(): void {
    this.closed = true;
    for (const lease of this.leases) lease.session.close();
    this.leases = [];
  }

  private limitOf(lease: Lease): number {
    // before the app's SETTINGS arrive remoteSettings holds the protocol defaults (unlimited)
    const remote = lease.session.remoteSettings?.maxConcurrentStreams ?? this.streamsPerSession;
    return Math.min(remote, this.streamsPerSession);
  }

  private open(): Lease {
    const session = http2.connect(this.url, { settings: { enablePush: false } });
    const lease: Lease = { session, active: 0, goaway: false, probing: false, retired: false };
    const retire = () => this.retire(lease);
    // streams on a failing session get the error themselves; the session leaves the pool
    session.on('error', (err) => {
      this.logger.debug({ err: err.message, app: this.url }, 'h2c session to the app failed');
      retire();
    });
    session.once('goaway', () => {
      lease.goaway = true;
      retire();
    });
    session.once('close', retire);
    if (this.closed) session.close();
    else this.leases.push(lease);
    return lease;
  }
}

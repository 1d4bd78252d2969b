// A few cleartext HTTP/2 sessions to the local app, multiplexing every forwarded request. A
// session is used until the app's stream limit (capped) is reached, then another is opened,
// up to a small maximum; past that the least busy one takes the stream (nghttp2 queues it).
// A session that closes, errors or receives GOAWAY leaves the pool at once, so the next
// request opens a fresh one: that is the reconnect. Node's client can also end a session
// without a word: on a protocol or compression error from the app (a header field over 64 KiB)
// it sends GOAWAY itself but neither closes nor tells, and every stream on it then hangs or is
// refused. Such a session is dropped when it refuses a stream without having received a GOAWAY,
// and when a stream times out and a PING then gets no answer within PROBE_MS.

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
    lease.active--;
  }

  /** A stream of this lease was refused (REFUSED_STREAM): without a GOAWAY from the app, the session ended itself. */
  refused(lease: Lease): void {
    if (!lease.goaway) this.discard(lease, 'it refused a stream though the app sent no GOAWAY (the client ended the session on an error of the app)');
  }

  /** A stream of this lease timed out unanswered: the session must answer a PING in time, or it goes. */
  probe(lease: Lease): void {
    const session = lease.session;
    if (lease.probing || session.closed || session.destroyed) return;
    lease.probing = true;
    const timer = setTimeout(() => this.discard(lease, `it did not answer a PING within ${this.probeMs} ms after a request timed out`), this.probeMs);
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
    const lease: Lease = { session, active: 0, goaway: false, probing: false };
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

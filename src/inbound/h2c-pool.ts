// A few cleartext HTTP/2 sessions to the local app, multiplexing every forwarded request. A
// session is used until the app's stream limit (capped) is reached, then another is opened,
// up to a small maximum; past that the least busy one takes the stream (nghttp2 queues it).
// A session that closes, errors or receives GOAWAY leaves the pool at once, so the next
// request opens a fresh one: that is the reconnect.

import http2, { type ClientHttp2Session } from 'node:http2';
import type { Logger } from 'pino';

export interface Lease {
  readonly session: ClientHttp2Session;
  /** Streams open on the session through this pool. */
  active: number;
}

export interface H2cPoolOptions {
  readonly maxSessions?: number;
  /** Streams per session before another is opened, even if the app allows more. */
  readonly streamsPerSession?: number;
}

export class H2cSessionPool {
  private leases: Lease[] = [];
  private readonly maxSessions: number;
  private readonly streamsPerSession: number;
  private closed = false;

  constructor(private readonly url: string, private readonly logger: Logger, options: H2cPoolOptions = {}) {
    this.maxSessions = options.maxSessions ?? 4;
    this.streamsPerSession = options.streamsPerSession ?? 100;
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
    const lease: Lease = { session, active: 0 };
    const retire = () => {
      const index = this.leases.indexOf(lease);
      if (index !== -1) this.leases.splice(index, 1);
    };
    // streams on a failing session get the error themselves; here it is only logged
    session.on('error', (err) => this.logger.debug({ err: err.message, app: this.url }, 'h2c session to the app failed'));
    session.once('goaway', retire);
    session.once('close', retire);
    if (this.closed) session.close();
    else this.leases.push(lease);
    return lease;
  }
}

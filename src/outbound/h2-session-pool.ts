// The upstream sessions of one UpstreamPool when `http2.codec` is `meshcar`: our own mutual TLS
// connection per session (the same dialler, SecureContext, ALPN h2 and SPIFFE check as the
// http2-wrapper agent, see upstream-agent.ts) wrapped in src/h2's H2Connection. It keeps the
// pool's rules of the `node` path:
// - few sessions per endpoint: a request uses an open session with a free stream slot; a new
//   session is dialled only when every one is full (the peer's SETTINGS_MAX_CONCURRENT_STREAMS),
//   and requests arriving while one is being dialled wait for it rather than dial their own;
// - a session whose probe PING has been out a while with nothing read takes no new stream:
//   requests wait for the probe's verdict (probed-sessions.ts);
// - a closing session (GOAWAY received or sent, max age) takes no new streams; the codec lets
//   the streams in flight finish and then ends the socket;
// - max age (jittered ±10%) closes gracefully; idle sessions are PINGed and destroyed when a
//   PING goes unanswered for a whole interval;
// - TLS session tickets are cached per endpoint here only (every one came from a handshake
//   checked against this upstream's identity; Node skips checkServerIdentity on resumption);
//   a rotation clears them so new sessions present the new certificate.

import { silentSinceProbeOf, startKeepalive, warnDeadSession } from './session-keepalive.js';
import type { Logger } from 'pino';
import { H2Connection, type H2Stream, type OutgoingHeaders, type RequestOptions } from '../h2/index.js';
import { MeshcarError } from '../errors.js';
import type { verifyServerSpiffeId } from '../identity/peer-identity.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { DialBudgets } from './dial-budgets.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { SessionPolicy } from './session-lifecycle.js';
import { dialHttp2, presentsOldCertificate, settingsLate } from './mutual-tls.js';
import { isSessionClosingError } from './upstream-errors.js';
import { h2SessionObserver } from '../http/h2-session-observer.js';
import { SENSITIVE_HEADERS } from '../http/sensitive-headers.js';
import { cancelledError, type WaitToken } from './stream-wait.js';
import { LogPerKey } from '../log-per-key.js';
import { clearTimer } from '../timer-clear.js';
import { UpstreamPathGuard, type TrustNow } from './upstream-trust.js';
import { countProbes } from './balancer.js';
import { holdSpent, ProbedSessions } from './probed-sessions.js';

export interface H2SessionPoolOptions {
  readonly upstream: string;
  readonly identity: WorkloadIdentity;
  /** What failed dials may cost per endpoint (dial-budgets.ts). */
  readonly budgets: DialBudgets;
  readonly checkServerIdentity: ReturnType<typeof verifyServerSpiffeId>;
  /** Read per dial: a reload may change it. Bounds TCP + TLS, and then the peer's SETTINGS. */
  readonly connectTimeoutMs: () => number;
  /** A dial failed: recorded once per dial, here, not by each request that waited on it. */
  readonly dialFailed: (endpoint: UpstreamEndpoint, err: unknown) => void;
  /** A new session is in the pool (a retired upstream pool, or a removed endpoint, closes it if nothing waits for it). */
  readonly sessionAdopted?: (endpoint: UpstreamEndpoint) => void;
  readonly policy: SessionPolicy;
  readonly observer: TrafficObserver;
  readonly logger: Logger;
}

/** Warn lines about sessions closed for an upstream's abuse: one per upstream per window (h2-session-observer.ts). */
const ABUSE_CLOSES = new LogPerKey();
/** Dials per request before giving up on an endpoint whose sessions never take a stream. */
const MAX_DIALS = 3;
const MAX_CLOSING_RETRIES = 2;

export class H2SessionPool {
  /** Open sessions (connected: the peer's SETTINGS arrived) and their endpoint. */
  private readonly sessions = new Map<H2Connection, UpstreamEndpoint>();
  /** Each session's upstream path, watched (upstream-trust.ts). */
  private readonly guards = new Map<H2Connection, UpstreamPathGuard>();
  /** Open sessions per endpoint, oldest first. */
  private readonly byEndpoint = new Map<UpstreamEndpoint, H2Connection[]>();
  /** Sessions whose probe PING went unanswered a while: no new stream on them (probed-sessions.ts). */
  private readonly probed = new ProbedSessions<H2Connection>();
  /** A session being dialled per endpoint: others wait for it instead of dialling too. */
  private readonly dialling = new Map<UpstreamEndpoint, Promise<H2Connection>>();
  private readonly tickets = new Map<string, Buffer>();
  private closed = false;

  constructor(private readonly options: H2SessionPoolOptions) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Open sessions to this endpoint (GET /upstreams: read when asked, never per request). */
  sessionsTo(endpoint: UpstreamEndpoint): number {
    return this.byEndpoint.get(endpoint)?.length ?? 0;
  }

  /** A stream at once on an open session with a free slot, or undefined. Throws for a bad header. */
  requestNow(endpoint: UpstreamEndpoint, headers: OutgoingHeaders | string[], options: RequestOptions): H2Stream | undefined {
    const conn = this.freeSession(endpoint);
    if (conn === undefined) return undefined;
    withScheme(headers);
    try {
      return conn.request(headers, options);
    } catch (err) {
      if (isSessionClosingError(err)) return undefined;
      throw err;
    }
  }

  /** A stream on this endpoint, dialling a session if none has a free slot. Connect errors are thrown as they are. */
  async request(endpoint: UpstreamEndpoint, headers: OutgoingHeaders | string[], options: RequestOptions, wait?: WaitToken): Promise<H2Stream> {
    withScheme(headers);
    let dials = 0;
    let closingRetries = 0;
    let heldSince: number | undefined;
    // waiting on other requests' dials is bounded by time, not rounds: a burst larger than a few
    // sessions' worth of streams waits its turn (every dial adds a session) instead of failing
    let giveUpAt = performance.now() + this.options.connectTimeoutMs() * (MAX_DIALS + 1);
    for (;;) {
      // given up (its requester went away, or its bound passed: stream-wait.ts): no stream for it
      if (wait?.cancelled) throw cancelledError();
      // checked and used in one synchronous step: waiters woken together cannot overfill a session
      let conn = this.freeSession(endpoint);
      // a session with room that went silent under its probe: its verdict is waited for (it
      // answers and takes this, or is judged dead and gone), not a dial beside it; past the
      // hold's limit, onto it after all (probed-sessions.ts)
      const probed = conn === undefined && !this.closed ? this.probedSession(endpoint) : undefined;
      if (probed !== undefined) {
        heldSince ??= performance.now();
        if (!holdSpent(heldSince)) {
          const turnFrom = performance.now();
          await this.probed.holdTurn(probed, wait);
          giveUpAt += performance.now() - turnFrom; // no dial was awaited meanwhile
          continue;
        }
        conn = probed;
      }
      if (conn) {
        try {
          return conn.request(headers, options);
        } catch (err) {
          if (isSessionClosingError(err) && closingRetries++ < MAX_CLOSING_RETRIES) continue;
          throw err;
        }
      }
      if (this.closed) throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
      const pending = this.dialling.get(endpoint);
      if (pending) {
        if (performance.now() > giveUpAt) throw new MeshcarError('upstream_unavailable', `${endpoint.key}: no session with a free stream within ${Math.round(this.options.connectTimeoutMs() * (MAX_DIALS + 1))} ms`);
        await pending; // its failure is ours too: the endpoint cannot be reached
        continue;
      }
      // only this request's own dials count: sessions it opened that took no stream
      if (dials++ >= MAX_DIALS) throw new MeshcarError('upstream_unavailable', `${endpoint.key} opened sessions that took no stream`);
      const dial = this.dial(endpoint);
      // recorded whether or not anyone still waits for it; the waiters' copies are not counted again
      dial.catch((err: unknown) => this.options.dialFailed(endpoint, err));
      this.dialling.set(endpoint, dial);
      try {
        await dial;
      } finally {
        if (this.dialling.get(endpoint) === dial) this.dialling.delete(endpoint);
      }
    }
  }

  private freeSession(endpoint: UpstreamEndpoint): H2Connection | undefined {
    const list = this.byEndpoint.get(endpoint);
    if (list === undefined) return undefined;
    let spent: H2Connection | undefined;
    for (let i = 0; i < list.length; i++) {
      const conn = list[i] as H2Connection;
      if (conn.closing || conn.destroyed || this.probed.skips(conn)) continue;
      // ended streams whose answers wait unread count: they hold the session's window (windowHolders)
      if (conn.windowHolders < streamsTaken(conn)) return conn;
      // the peer lowered SETTINGS_MAX_CONCURRENT_STREAMS to 0 and nothing is open on it: it can
      // carry no request; kept, a peer doing so after each answer had us open a session per
      // request, each kept to its maximum age (descriptors and memory)
      if (conn.remoteSettings.maxConcurrentStreams === 0 && conn.activeStreams === 0) spent = conn;
    }
    // closed after the walk: a close may finish at once, and its 'close' takes it out of `list`
    spent?.close();
    return undefined;
  }

  /** A session of `endpoint` with a free slot that freeSession skipped for its probe. */
  private probedSession(endpoint: UpstreamEndpoint): H2Connection | undefined {
    for (const conn of this.byEndpoint.get(endpoint) ?? []) {
      if (!conn.closing && !conn.destroyed && conn.windowHolders < streamsTaken(conn) && this.probed.skips(conn)) return conn;
    }
    return undefined;
  }

  private async dial(endpoint: UpstreamEndpoint): Promise<H2Connection> {
    const key = endpoint.key;
    const timeoutMs = this.options.connectTimeoutMs();
    // one bound for the whole dial: a peer that finished TLS just in time gets no second one for its SETTINGS
    const deadline = performance.now() + timeoutMs;
    const socket = await dialHttp2(endpoint, { identity: this.options.identity, budgets: this.options.budgets, checkServerIdentity: this.options.checkServerIdentity, timeoutMs }, this.tickets);
    if (this.closed) {
      socket.destroy();
      throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
    }
    const conn = new H2Connection(socket, { role: 'client', sensitiveHeaders: SENSITIVE_HEADERS, observer: h2SessionObserver('outbound', this.options.observer, this.options.logger, this.options.upstream, key, ABUSE_CLOSES) });
    // the peer's SETTINGS tell how many streams a session takes: wait for them, within what is left of the bound
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        conn.off('connect', onConnect);
        conn.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onConnect = () => done();
      // right after our handshake: a callee refusing our certificate looks like this (upstream-errors.ts)
      const onClose = (reason: string) => done(Object.assign(new Error(`${key} closed the HTTP/2 connection before its SETTINGS (${reason})`), { code: 'ECONNRESET', closedBeforeSettings: true }));
      const timer = setTimeout(() => {
        conn.destroy();
        done(Object.assign(new Error(settingsLate(key, timeoutMs)), { code: 'ETIMEDOUT' }));
      }, Math.max(0, deadline - performance.now()));
      conn.on('connect', onConnect);
      conn.on('close', onClose);
    });
    if (this.closed) {
      conn.destroy();
      throw new MeshcarError('upstream_unavailable', 'the outbound side is shutting down');
    }
    // its SETTINGS came with a GOAWAY or a connection error in the same read: the session ended
    // before this turn, its 'close' already emitted. Adopted, it stayed in the pool for good (a
    // keepalive timer, the sessions gauge, the lists) and every request dialled again; a meshcar
    // inbound draining does this to each new session, so it is a failed dial (the endpoint rests)
    if (conn.destroyed || conn.closing) {
      conn.destroy();
      throw new MeshcarError('upstream_unavailable', `${key} closed the HTTP/2 connection as it opened it (a GOAWAY or a connection error with its SETTINGS: draining, or refusing new sessions)`);
    }
    // a peer that allows no stream: the session could never carry a request (it was adopted
    // and left idle until its max age, MAX_DIALS of them per request); a failed dial instead
    if (conn.remoteSettings.maxConcurrentStreams === 0) {
      conn.destroy();
      throw new MeshcarError('upstream_unavailable', `${key} allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)`);
    }
    this.adopt(conn, endpoint);
    return conn;
  }

  private adopt(conn: H2Connection, endpoint: UpstreamEndpoint): void {
    const { observer, upstream, policy, logger } = this.options;
    this.sessions.set(conn, endpoint);
    const list = this.byEndpoint.get(endpoint);
    if (list) list.push(conn);
    else this.byEndpoint.set(endpoint, [conn]);
    observer.upstreamSessionsChanged(upstream, 1);

    // max age: graceful close (client GOAWAY; streams in flight finish), jittered so sessions
    // opened together do not all roll at once
    const ageTimer = setTimeout(() => conn.close(), Math.max(1, Math.round(policy.maxSessionAgeMs * (0.9 + Math.random() * 0.2))));
    ageTimer.unref();
    // PING whenever the peer was silent for a whole interval, busy or not (session-keepalive.ts)
    const keepalive = startKeepalive(conn, policy.pingIntervalMs, (err) => {
      if (conn.destroyed) return;
      warnDeadSession(logger, upstream, endpoint.key, conn.activeStreams, err.message);
      conn.destroy(undefined, 'ping_timeout');
    }, () => conn.activeStreams, this.probed.hook(conn, countProbes(endpoint), () => silentSinceProbeOf(conn)));

    // no new requests before the upstream's certificate path expires, cut at its expiry or once it no longer chains to our bundle
    const guard = UpstreamPathGuard.watch(conn.socket, {
      retire: () => conn.close(),
      cut: (why) => {
        // a retired session still closing with nothing in flight loses nothing: said at debug
        const inFlight = conn.activeStreams;
        if (inFlight > 0) logger.warn({ upstream, endpoint: endpoint.key, inFlight }, `upstream session closed, requests in flight on it cut: ${why}`);
        else logger.debug({ upstream, endpoint: endpoint.key }, `upstream session closed: ${why}`);
        conn.destroy(undefined, 'destroyed');
      },
    });
    if (guard) this.guards.set(conn, guard);

    conn.on('error', (err: Error) => logger.debug({ upstream, err: err.message }, 'upstream session error'));
    conn.once('close', (reason: string) => {
      clearTimer(ageTimer); // a jittered age, a list of its own (timer-clear.ts)
      keepalive.stop();
      guard?.stop();
      this.guards.delete(conn);
      this.sessions.delete(conn);
      const open = this.byEndpoint.get(endpoint);
      if (open) {
        open.splice(open.indexOf(conn), 1);
        if (open.length === 0) this.byEndpoint.delete(endpoint);
      }
      observer.upstreamSessionsChanged(upstream, -1);
      logger.debug({ upstream, endpoint: endpoint.key, reason }, 'upstream session closed');
    });
    // a bundle change during the dial reached no guard: checked now (cut if it no longer vouches)
    guard?.catchUp(this.options.identity.tls().anchorsPem);
    // a rotation while its SETTINGS were awaited reached no session: the requests waiting for
    // this dial take their streams first (they resume before an immediate), then it winds down
    if (presentsOldCertificate(conn.socket, this.options.identity)) setImmediate(() => conn.close());
    this.options.sessionAdopted?.(endpoint);
  }

  /** After a rotation: new sessions do a full handshake with the new certificate. */
  forgetTlsSessions(endpointKey?: string): void {
    if (endpointKey === undefined) this.tickets.clear();
    else this.tickets.delete(endpointKey);
  }

  /** The trust bundle changed: sessions whose upstream no longer chains to it are cut. */
  trustChanged(trust: TrustNow): void {
    for (const guard of [...this.guards.values()]) guard.trustChanged(trust);
  }

  /** Every session finishes its streams and closes; new requests dial new ones. */
  closeGracefully(endpoint?: UpstreamEndpoint): void {
    for (const [conn, of] of this.sessions) if (endpoint === undefined || of === endpoint) conn.close();
  }

  /** The session `stream` was made on takes no new streams and closes once its streams end (calmed-sessions.ts). */
  closeSessionOf(stream: H2Stream): void {
    const conn = stream.host as unknown;
    if (this.sessions.has(conn as H2Connection)) (conn as H2Connection).close();
  }

  /** Stops at once: every session and its streams. */
  close(): void {
    this.closed = true;
    for (const conn of [...this.sessions.keys()]) conn.destroy();
  }
}

/** Core http2's session.request() adds :scheme from its origin; src/h2 sends what it is given. */
// a list comes with its :scheme (attempt.ts makes it so)
function withScheme(headers: OutgoingHeaders | string[]): void {
  if (!Array.isArray(headers) && headers[':scheme'] === undefined) headers[':scheme'] = 'https';
}

/**
 * The streams a session takes: the peer's SETTINGS_MAX_CONCURRENT_STREAMS, and no more than its
 * receive window holds at a full stream window each. Credit comes back only as an answer is
 * read, so past that many unread answers every other stream on the session stalled (an
 * inbound allowing 1,000 streams: 250 stalled downloads froze an ordinary one); the pool opens
 * another session instead.
 */
function streamsTaken(conn: H2Connection): number {
  return Math.min(conn.remoteSettings.maxConcurrentStreams, Math.floor(conn.limits.connectionWindowSize / conn.limits.initialWindowSize));
}

// A few cleartext HTTP/2 sessions to the local app, multiplexing every forwarded request, within
// the app's own stream limit. A session is used up to the app's SETTINGS_MAX_CONCURRENT_STREAMS
// (capped by streamsPerSession); a new session carries only coldStreams streams until the app's
// SETTINGS arrive (a burst sent before them is refused past the app's limit). A request that
// finds every session full WAITS here (h2c-waiters.ts: bounded, until its own deadline) rather
// than overloading the app: another session is opened only when the sessions are full by our
// cap, never when the app itself set the lower limit (an app that allows 10 streams means 10 at
// once, as a Linkerd or Envoy user expects; opening more sessions would get around it).
//
// A session that closes, errors or receives GOAWAY leaves the pool at once, so the next request
// opens a fresh one: that is the reconnect. Node's client can also end a session without a word:
// on a protocol or compression error from the app (a header field over 64 KiB) it sends GOAWAY
// itself but neither closes nor tells, and every stream on it is refused. A REFUSED_STREAM is
// not held against a session, though: the app may enforce a limit lower than announced, or
// lower it (RFC 9113 §8.7). A stream refused on a session whose limit was known when it went
// out makes the session take no more streams than it then had, and none until it answers a
// PING (PROBE_MS; a dead one is destroyed, failing its hung streams at once; meanwhile another
// session may be opened). What a confirmed refusal taught holds for LEARNED_MS, then the
// announced limit is tried again (an app refusing under a passing overload is not held to it
// for the sidecar's life), and a refusal with no other stream open teaches nothing (no limit
// is 0: that was this request's refusal, not a concurrency limit); the session is probed all the
// same. A stream refused before the limit was known costs nothing. A session
// whose stream timed out must answer a PING too. One whose app never sends SETTINGS is dropped
// after firstSettingsMs (h2c-first-settings.ts). What the pool keeps per session (a Lease),
// the app's own limit on one, and the pool's options are in h2c-lease.ts.

import http2 from 'node:http2';
import type { Logger } from 'pino';
import { WaitQueue, type PoolWaiter } from './h2c-waiters.js';
import { H2cCallerShare } from './h2c-caller-share.js';
import { boundFirstSettings, FIRST_SETTINGS_MS } from './h2c-first-settings.js';
import { appLimitOf, type H2cPoolOptions, type Lease } from './h2c-lease.js';

export type { PoolWaiter } from './h2c-waiters.js';

/** How long a suspect session has to answer a PING (an app whose event loop is busy that long is as good as gone for new streams). */
const PROBE_MS = 5000;
/** How long a stream limit learned from refusals holds before the app's announced one is tried again. */
const LEARNED_MS = 60_000;

function closing(): Error {
  return Object.assign(new Error('the sidecar is closing its sessions to the app'), { code: 'ERR_HTTP2_SESSION_CLOSED' });
}

export class H2cSessionPool {
  private leases: Lease[] = [];
  private readonly maxSessions: number;
  private readonly streamsPerSession: number;
  private readonly coldStreams: number;
  private readonly probeMs: number;
  private readonly firstSettingsMs: number;
  readonly waiters: WaitQueue;
  /** No caller holds more than 7/8 of the slots (h2c-caller-share.ts). */
  private readonly share = new H2cCallerShare();
  private readonly mayTake = (caller: string): boolean => this.share.mayTake(caller, this.capacity());
  private closed = false;
  private pumping = false;
  /** What refusals taught and a PING confirmed (the session lived: the app enforces a lower limit than it announces): new sessions start with it. */
  private learned = Infinity;
  private readonly learnedMs: number;
  /** Lifts `learned` LEARNED_MS after it was last lowered. */
  private learnedTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Sessions opened over the pool's life (tests and logs). */
  opened = 0;

  constructor(private readonly url: string, private readonly logger: Logger, options: H2cPoolOptions = {}) {
    this.maxSessions = options.maxSessions ?? 4;
    this.streamsPerSession = options.streamsPerSession ?? 100;
    this.coldStreams = options.coldStreams ?? 1;
    this.probeMs = options.probeMs ?? PROBE_MS;
    this.firstSettingsMs = options.firstSettingsMs ?? FIRST_SETTINGS_MS;
    this.learnedMs = options.learnedMs ?? LEARNED_MS;
    this.waiters = new WaitQueue(options.maxWaiting ?? 1000);
  }

  get sessions(): number {
    return this.leases.length;
  }

  /**
   * A session with a free stream slot for a request of `caller` (release() it with the same
   * caller when the stream closes), or undefined: wait(). Undefined too while the caller holds
   * its share of the slots. Throws what http2.connect throws when a new session cannot even
   * begin (an address its URL cannot hold): the caller fails its request with it.
   */
  acquire(caller?: string): Lease | undefined {
    if (caller !== undefined && !this.mayTake(caller)) return undefined;
    const lease = this.freeSlot();
    if (lease !== undefined && caller !== undefined) this.share.take(caller);
    return lease;
  }

  /** The slots the sessions allow now, and those sessions still to open would. */
  private capacity(): number {
    let slots = 0;
    let growthBlocked = false;
    for (const lease of this.leases) {
      if (lease.session.closed || lease.session.destroyed) continue;
      slots += this.limitOf(lease);
      if (!lease.suspect && (!lease.settled || appLimitOf(lease) < this.streamsPerSession)) growthBlocked = true;
    }
    return growthBlocked ? slots : slots + Math.max(0, this.maxSessions - this.leases.length) * this.streamsPerSession;
  }

  private freeSlot(): Lease | undefined {
    const leases = this.leases;
    let growthBlocked = false;
    for (let i = 0; i < leases.length; i++) {
      const lease = leases[i] as Lease;
      if (lease.session.closed || lease.session.destroyed) continue; // its 'close' is on the way
      if (lease.active < this.limitOf(lease)) {
        lease.active++;
        return lease;
      }
      // full by the app's own (or not yet known) limit: more sessions would get around it
      if (!lease.suspect && (!lease.settled || appLimitOf(lease) < this.streamsPerSession)) growthBlocked = true;
    }
    if (this.closed || growthBlocked || leases.length >= this.maxSessions) return undefined;
    const lease = this.open();
    if (this.limitOf(lease) < 1) return undefined;
    lease.active++;
    return lease;
  }

  /** Queues a request for the next free slot; the queue being full, the waiter refused (this one or one it crowded out, h2c-waiters.ts). */
  wait(waiter: PoolWaiter): PoolWaiter | undefined {
    if (this.closed) {
      waiter.failed(closing());
      return undefined;
    }
    return this.waiters.add(waiter);
  }

  release(lease: Lease, caller?: string): void {
    if (caller !== undefined) this.share.release(caller);
    // a retired session closes once its streams are done (Node's close() with streams still
    // open failed a healthy app's answer in flight), unless the app or a failure closed it
    if (--lease.active === 0 && lease.retired && !lease.session.closed) lease.session.close();
    this.pump();
  }

  /**
   * A stream of this lease was refused (REFUSED_STREAM) though the app sent no GOAWAY.
   * `knownLimit`: the app's SETTINGS had arrived when the stream went out. Before them the
   * refusal is the app enforcing the limit we did not know yet (now we do): nothing to learn.
   * After them the app enforced a lower limit than announced, or Node's client ended the
   * session itself: the session takes at most `others` streams, none until it answers a PING.
   */
  refused(lease: Lease, knownLimit: boolean, others: number): void {
    if (lease.goaway || lease.retired || !knownLimit) return;
    if (others > 0) lease.learned = Math.min(lease.learned, others);
    lease.suspect = true;
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
        else if (lease.suspect) {
          // alive: the refusal was the app's limit, true of its other sessions too
          lease.suspect = false;
          if (lease.learned < this.learned) this.learn(lease.learned);
          this.pump();
        }
      });
    } catch (err) {
      clearTimeout(timer);
      this.discard(lease, `it cannot send a PING (${(err as Error).message})`);
    }
  }

  /** A lower stream limit confirmed: every session takes it, until it is lifted LEARNED_MS later. */
  private learn(limit: number): void {
    if (this.closed) return; // a PING answered after close(): nothing is opened any more
    this.learned = limit;
    for (const lease of this.leases) lease.learned = Math.min(lease.learned, limit);
    clearTimeout(this.learnedTimer);
    this.learnedTimer = setTimeout(() => this.forgetLearned(), this.learnedMs);
    this.learnedTimer.unref();
  }

  /** The app's announced limit (or a new SETTINGS) is what counts again; a limit it still enforces is learned anew. */
  private forgetLearned(): void {
    clearTimeout(this.learnedTimer);
    this.learnedTimer = undefined;
    this.learned = Infinity;
    for (const lease of this.leases) lease.learned = Infinity;
    this.pump();
  }

  /** Drops a session that no longer works: its streams close (their exchanges fail now), and the next request opens another. */
  private discard(lease: Lease, why: string): void {
    lease.discarded = true;
    this.retire(lease);
    if (lease.session.destroyed) return;
    this.logger.warn({ app: this.url }, `h2c session to the app dropped: ${why}`);
    lease.session.destroy();
  }

  /** The session failed: it leaves the pool. */
  private failed(lease: Lease, err: Error): void {
    this.logger.debug({ err: err.message, app: this.url }, 'h2c session to the app failed');
    // never reached the app (refused, not there, silent): the requests waiting for a slot fail
    // with it, rather than each opening one more connection that fails the same way
    if (!lease.settled && !this.leases.some((l) => l !== lease && l.settled && !l.retired)) this.waiters.failAll(err);
    this.retire(lease);
  }

  private retire(lease: Lease): void {
    lease.retired = true;
    const index = this.leases.indexOf(lease);
    if (index === -1) return;
    this.leases.splice(index, 1);
    this.pump(); // the waiting requests may now open a session of their own
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.learnedTimer);
    for (const lease of this.leases) lease.session.close();
    this.leases = [];
    this.waiters.failAll(closing());
  }

  /** Hands free slots to waiting requests, oldest first. */
  private pump(): void {
    if (this.pumping) return; // a waiter's start may release a slot (a request that throws): the loop takes it
    this.pumping = true;
    try {
      while (this.waiters.size > 0) {
        let lease: Lease | undefined;
        try {
          lease = this.freeSlot();
        } catch (err) {
          // a session that could not even begin to open (acquire): the waiting requests get the error
          this.waiters.failAll(err as Error);
          break;
        }
        if (lease === undefined) break;
        // the oldest request of the next caller in turn not holding its share
        const waiter = this.waiters.shiftWhere(this.mayTake);
        if (waiter === undefined) {
          this.release(lease);
          break;
        }
        this.share.take(waiter.caller);
        waiter.granted(lease);
      }
    } finally {
      this.pumping = false;
    }
  }

  private limitOf(lease: Lease): number {
    if (lease.suspect) return 0;
    if (!lease.settled) return Math.min(this.coldStreams, this.streamsPerSession);
    return Math.min(appLimitOf(lease), this.streamsPerSession);
  }

  private open(): Lease {
    // maxHeaderListPairs as the outbound listener's and Node's HTTP/1.1 maxHeadersCount (2000):
    // Node's http2 client takes 128 fields by default and resets the stream beyond, so an answer
    // an http:// app gets through was 502 upstream_reset from an h2c app.
    // The stream window stays Node's 64 KiB: at 256 KiB, a Node app's reset of a request it never
    // read (early-end.ts) overtook its answer's end on 35-56 of 100 downloads of 256 KiB without a
    // Content-Length, 96-100 with a 4 MiB connection window too (h2c-app-window-unread.test.ts);
    // both windows together had made h2c bulk transfers ~40 % faster (docs/benchmarks.md)
    const session = http2.connect(this.url, { settings: { enablePush: false }, maxHeaderListPairs: 2000 });
    this.opened++;
    const lease: Lease = { session, active: 0, settled: false, learned: this.learned, suspect: false, goaway: false, probing: false, retired: false, discarded: false };
    // a silent app (no SETTINGS) may not hold it for ever; waiters fail before its streams' release dials for them
    boundFirstSettings(session, this.firstSettingsMs, (err) => (this.failed(lease, err), session.destroy(err)));
    let announced: number | undefined;
    // every SETTINGS from the app (it may change its limit at any time): the slots it allows go
    // to waiting requests, and a changed limit replaces what refusals taught
    session.on('remoteSettings', (settings) => {
      const limit = settings.maxConcurrentStreams;
      if (lease.settled && limit !== announced) this.forgetLearned();
      announced = limit;
      lease.settled = true;
      this.pump();
    });
    // streams on a failing session get the error themselves; the session leaves the pool
    session.on('error', (err) => this.failed(lease, err));
    // every GOAWAY (a later one may lower the last id); Node emits it before it fails the streams
    session.on('goaway', (_code: number, lastStreamId: number) => {
      lease.goaway = true;
      lease.goawayLastStreamId = Math.min(lease.goawayLastStreamId ?? lastStreamId, lastStreamId);
      this.retire(lease);
    });
    session.once('close', () => this.retire(lease));
    if (this.closed) session.close();
    else this.leases.push(lease);
    return lease;
  }
}

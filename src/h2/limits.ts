// The limits a connection enforces on its peer (with defaults), and the budgets that turn
// floods of cheap frames into a connection error: SETTINGS and PING per time window (as Go
// and nghttp2 bound them), PRIORITY per stream opened and WINDOW_UPDATE per DATA frame sent
// (as Envoy does: a peer has no reason to send many more), consecutive empty DATA frames,
// and resets (rapid reset: streams the peer resets; MadeYouReset: streams the peer made us
// reset with protocol errors) against the streams that completed. And the receive windows
// (WINDOWS below: why the connection's holds every open stream's).

import { DEFAULT_WINDOW } from './constants.js';

export interface H2Limits {
  /** Streams the peer may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); beyond: REFUSED_STREAM. */
  readonly maxConcurrentStreams: number;
  /** Decoded header list size (SETTINGS_MAX_HEADER_LIST_SIZE), enforced while decoding. */
  readonly maxHeaderListSize: number;
  /** Fields in one header block (beyond: as if the list were too large: 431 or RST_STREAM). */
  readonly maxHeaderFields: number;
  /** Compressed bytes of one header block, HEADERS plus CONTINUATION, checked before decoding. */
  readonly maxHeaderBlockBytes: number;
  /** CONTINUATION frames in one header block. */
  readonly maxContinuationFrames: number;
  /** Time a header block spanning frames has to end (END_HEADERS); beyond: continuation_flood. */
  readonly headerBlockTimeoutMs: number;
  /** Largest frame we accept (SETTINGS_MAX_FRAME_SIZE). */
  readonly maxFrameSize: number;
  /** HPACK dynamic table size we allow the peer's encoder (SETTINGS_HEADER_TABLE_SIZE). */
  readonly headerTableSize: number;
  /** Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE): what one stream may buffer here. */
  readonly initialWindowSize: number;
  /**
   * The connection's receive window: what all streams together may buffer here. Unless given,
   * maxConcurrentStreams × initialWindowSize (see WINDOWS below).
   */
  readonly connectionWindowSize: number;
  /** Time the peer has to acknowledge our SETTINGS (SETTINGS_TIMEOUT). */
  readonly settingsTimeoutMs: number;
  /** Window of the SETTINGS, PING and reset budgets. */
  readonly budgetWindowMs: number;
  readonly maxSettingsPerWindow: number;
  /** Entries in one SETTINGS frame (nghttp2's cap since CVE-2020-11080); beyond: ENHANCE_YOUR_CALM. */
  readonly maxSettingsEntries: number;
  readonly maxPingsPerWindow: number;
  /** Resets the peer caused (its own RST_STREAM, or our stream errors) per window, while they outnumber completed streams. */
  readonly maxResetsPerWindow: number;
  /** PRIORITY frames allowed per stream opened, by the peer or by us (plus this many once). */
  readonly maxPriorityPerStream: number;
  /** WINDOW_UPDATE frames allowed per DATA frame we sent (plus 100 × this once). */
  readonly maxWindowUpdatesPerDataFrame: number;
  /** DATA frames in a row with no payload and no END_STREAM. */
  readonly maxConsecutiveEmptyData: number;
  /**
   * GOAWAY frames a peer may send on one connection: a graceful close takes two, an error one
   * more. Each walks the open streams, and a NO_ERROR one leaves the connection open while
   * streams run: without a bound a peer could send them forever.
   */
  readonly maxGoaways: number;
  /** Bytes queued toward a peer that does not read, beyond which it is cut off. */
  readonly maxOutboundBuffer: number;
}

// WINDOWS. Credit goes back only as a consumer takes the bytes (flow-control.ts), at both
// levels, so the connection window is a hard bound on what one connection buffers, streams
// that completed but were not read yet included. The price: streams whose consumers are slow
// hold their share of it, and once they hold all of it every other stream on the connection
// stalls (head-of-line blocking across streams; 8 slow streams did it with the former 1 MiB
// and 8 MiB). So the connection window defaults to maxConcurrentStreams × the stream window:
// the streams a peer may have open can never hold it all, a slow stream stops at its own
// window and the others go on. What that costs is memory: 250 × 256 KiB = 62.5 MiB that one
// connection may buffer while none of its consumers reads (the bytes themselves:
// stream-held-body.ts keeps memory in proportion to them), where a 1 MiB stream window would
// make it 250 MiB; 256 KiB of window still carries about 200 MB/s per stream at a 1 ms round
// trip (credit goes back a quarter window at a time).
// Others: Go's client 4 MiB per stream, 1 GiB per connection (256 streams' worth); Go's server
// 1 MiB and 1 MiB, where one unread upload stalls the connection (golang/go#16510, #54330,
// #62722, whose proposed fix is connection credit on receipt); Node's core http2 returns
// connection credit on receipt (bound: its 64 KiB stream windows, and maxSessionMemory), and
// so do nghttp2's automatic window updates (64 KiB windows); Envoy 256 MiB each by default,
// 64 KiB per stream and 1 MiB per connection in its edge guidance. Credit on receipt would
// amount to an unbounded connection window: streams that completed are counted against no
// concurrency limit, so a client whose app keeps opening requests and reads the answers slowly
// would buffer without end. A large bound gives the same sharing and keeps one.
// Where more streams are open than the window holds (our client, on a peer that allows more
// than our maxConcurrentStreams; an explicit connectionWindowSize) slow streams get
// backpressure on the connection again, never unbounded memory.
// A connection window derived from a configured maxConcurrentStreams stops at 64 MiB (a little
// above the default's 62.5): 8,192 streams would otherwise let one connection buffer 2 GiB.
const DEFAULT_STREAM_WINDOW = 256 * 1024;
const DEFAULT_MAX_STREAMS = 250;
const MAX_DERIVED_CONNECTION_WINDOW = 64 * 1024 * 1024;

export const DEFAULT_LIMITS: H2Limits = Object.freeze({
  maxConcurrentStreams: DEFAULT_MAX_STREAMS,
  maxHeaderListSize: 64 * 1024,
  maxHeaderBlockBytes: 64 * 1024,
  maxHeaderFields: 256,
  maxContinuationFrames: 16,
  headerBlockTimeoutMs: 10_000,
  maxFrameSize: 16_384,
  headerTableSize: 4_096,
  initialWindowSize: DEFAULT_STREAM_WINDOW,
  connectionWindowSize: DEFAULT_MAX_STREAMS * DEFAULT_STREAM_WINDOW,
  settingsTimeoutMs: 10_000,
  budgetWindowMs: 10_000,
  maxSettingsPerWindow: 100,
  maxSettingsEntries: 32,
  maxPingsPerWindow: 100,
  maxResetsPerWindow: 200,
  maxPriorityPerStream: 100,
  maxWindowUpdatesPerDataFrame: 10,
  maxConsecutiveEmptyData: 16,
  maxGoaways: 16,
  maxOutboundBuffer: 16 << 20,
});

export function resolveLimits(partial: Partial<H2Limits> | undefined): H2Limits {
  if (partial === undefined) return DEFAULT_LIMITS;
  const limits: { -readonly [K in keyof H2Limits]: H2Limits[K] } = { ...DEFAULT_LIMITS, ...partial };
  // the open streams' windows fit in the connection's (WINDOWS above), within the legal range
  if (partial.connectionWindowSize === undefined) limits.connectionWindowSize = Math.max(DEFAULT_WINDOW, Math.min(MAX_DERIVED_CONNECTION_WINDOW, limits.maxConcurrentStreams * limits.initialWindowSize));
  return limits;
}

/** A count that starts over every `windowMs`; `hit()` says whether it went past `max`. */
export class WindowBudget {
  private startMs = 0;
  count = 0;
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  hit(nowMs: number): boolean {
    if (nowMs - this.startMs >= this.windowMs) {
      this.startMs = nowMs;
      this.count = 0;
    }
    return ++this.count > this.max;
  }
}

/**
 * Rapid reset (CVE-2023-44487) counts only premature resets, as Envoy's premature-reset check
 * defines them: reset before the response head was sent, and within a second of opening. A
 * caller cancelling a watch or a download it already has an answer for, or a call it waited on
 * for longer, does what busy clients do; counting those let one app's cancellations close its
 * caller's whole connection, with every other stream on it.
 */
export const PREMATURE_RESET_MS = 1_000;

/**
 * A stream's own deadline (grpc-timeout, x-request-timeout) under PREMATURE_RESET_MS made its
 * every cancel premature: gRPC clients, and the outbound sidecar whose clock starts first,
 * reset a call at its deadline, before the inbound's own DEADLINE_EXCEEDED, so a slow method
 * called at ~20/s with a 300 ms deadline closed the caller's whole connection, with its
 * healthy streams. A reset past half the stream's deadline is that deadline's doing; one
 * younger than this never is (a stream a peer opens and resets must live this long to pass),
 * unless its deadline is shorter and it lived nine tenths of it: sub-100 ms deadlines are common
 * in gRPC, and a slow callee under them had its caller's connection closed with its healthy
 * streams (a review: 60 ms deadlines, a 1-a-second server stream cut). The budget below still
 * holds them.
 */
export const DEADLINE_RESET_FLOOR_MS = 100;
/**
 * ...and never under this: a peer naming a 1 ms deadline reset its streams at full speed into
 * the deadline budget, ten times the premature one's (a review: 2,000 in 9 ms). A stream must
 * live this long to count as its deadline's, so that budget takes 80 ms of each of them.
 */
export const DEADLINE_RESET_MIN_AGE_MS = 20;

/**
 * Resets at their streams' deadlines count in a budget of their own, this many times the
 * premature ones': exempt outright, a peer naming a 200 ms deadline and resetting at 100 ms
 * went uncounted at 2,500 streams a second per connection (250 streams, 100 ms each), ten
 * times what a stream held a second allowed, each one an app request started and cancelled.
 * Ten times the limit still lets a slow method's timed-out calls through (200 by default:
 * 2,000 per 10 s), and a peer past it gets the same GOAWAY.
 */
export const DEADLINE_RESETS_FACTOR = 10;

/** Whether a window's resets at their streams' deadlines are past their budget: DEADLINE_RESETS_FACTOR times `max`, and more than the streams completed. */
export function deadlineResetsOver(atDeadline: number, max: number, completed: number): boolean {
  return atDeadline > max * DEADLINE_RESETS_FACTOR && atDeadline > completed;
}

/**
 * How a peer's reset of a stream we had not ended counts: 'premature' (rapid reset),
 * 'deadline' (past half the caller's own `deadlineMs` for it, and DEADLINE_RESET_FLOOR_MS old or nine tenths of a shorter one, at least DEADLINE_RESET_MIN_AGE_MS:
 * DEADLINE_RESETS_FACTOR), or undefined (an ordinary end).
 */
export function peerResetKind(answered: boolean, ageMs: number, deadlineMs?: number): 'premature' | 'deadline' | undefined {
  if (answered || ageMs > PREMATURE_RESET_MS) return undefined;
  if (deadlineMs !== undefined && ageMs >= Math.max(DEADLINE_RESET_MIN_AGE_MS, Math.min(DEADLINE_RESET_FLOOR_MS, deadlineMs * 0.9)) && ageMs * 2 >= deadlineMs) return 'deadline';
  return 'premature';
}

/** Once a caller's shared count is over, a connection of its that resets more than it completes is cut past budget / this of its own (ResetBudget.reset). */
const SHARED_CUT_SHARE = 10;
/** ...and at its first reset more than it completed, once the caller's count is this many times its budget. */
const SHARED_HARD_FACTOR = 5;

/** Rapid reset and MadeYouReset, one window: resets caused by the peer against completed streams. */
export class ResetBudget {
  private startMs = 0;
  private peerResets = 0;
  private provoked = 0;
  private completed = 0;
  /** Resets at their streams' deadlines (peerResetKind), in a budget of their own. */
  private atDeadline = 0;
  /** Streams we reset because the peers' shared body budget was full (bufferLimitReset), in a budget of their own. */
  private bufferLimited = 0;
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    /** The budget of every connection sharing a ReceiveBudget: completed streams and buffer_limit resets count there too. */
    private readonly shared?: ResetBudget,
  ) {}

  private roll(nowMs: number): void {
    if (nowMs - this.startMs >= this.windowMs) {
      this.startMs = nowMs;
      this.peerResets = this.provoked = this.completed = this.atDeadline = this.bufferLimited = 0;
    }
  }

  completedStream(nowMs: number): void {
    this.roll(nowMs);
    this.completed++;
    this.shared?.completedStream(nowMs);
  }

  /** The peer reset a stream we had not ended: a premature reset is counted (see reset()), any other is an ordinary end. */
  peerReset(answered: boolean, ageMs: number, nowMs: number, deadlineMs?: number): 'rapid_reset' | 'made_you_reset' | undefined {
    const kind = peerResetKind(answered, ageMs, deadlineMs);
    if (kind === 'premature') return this.reset(true, nowMs);
    if (kind === undefined) {
      this.completedStream(nowMs);
      return undefined;
    }
    // per connection only: an overloaded callee's fleet of callers (one identity) cancels at
    // its deadlines on every connection, and counted together they closed them all (a re-review)
    this.roll(nowMs);
    this.atDeadline++;
    return deadlineResetsOver(this.atDeadline, this.max, this.completed) ? 'rapid_reset' : undefined;
  }

  /**
   * We reset a stream because the bodies the peers sharing a ReceiveBudget hold fill it: not
   * the peer's fault (it stayed inside its windows; the app reads slowly), so not in reset()'s
   * budget, whose 200 an honest uploader reached; but a caller that keeps opening streams into
   * a full budget costs us each stream's setup, so they have a budget of their own, as resets
   * at deadlines do: DEADLINE_RESETS_FACTOR times `max`, and more than the streams completed;
   * on this connection, and (`shared`) across the connections sharing the body budget.
   */
  bufferLimitReset(nowMs: number): 'made_you_reset' | undefined {
    this.roll(nowMs);
    this.bufferLimited++;
    const sharedAbuse = this.shared?.bufferLimitReset(nowMs);
    // the caller's share past its budget cuts the connection the reset came on, unless that
    // connection completes more than it is reset: gated by a tenth as premature resets are, 20
    // connections × 200 uploads went uncut; ungated, a healthy replica (300 calls completed)
    // was cut at its first upload into the budget another replica of its identity filled (re-reviews)
    if (deadlineResetsOver(this.bufferLimited, this.max, this.completed)) return 'made_you_reset';
    return sharedAbuse !== undefined && this.bufferLimited > this.completed ? sharedAbuse : undefined;
  }

  /**
   * Returns the abuse reason when the budget is exhausted, else undefined. Counted on this
   * connection and (`shared`) across the caller's connections: spread over connections, a
   * caller got each one's whole allowance, a reconnect all a GOAWAY cost it. The shared count
   * trips only when the caller's resets also outnumber its completed streams, and then cuts only
   * a connection that itself resets more than it completes, past a tenth of the budget, or at
   * its first such reset once the caller is SHARED_HARD_FACTOR times over (farOver): one
   * identity is often many replicas, and a re-review had a healthy one cut for a single cancel
   * once a broken one had spent the budget, and every fresh connection of the service cut at
   * its first cancel for the rest of the window.
   */
  reset(byPeer: boolean, nowMs: number): 'rapid_reset' | 'made_you_reset' | undefined {
    this.roll(nowMs);
    if (byPeer) this.peerResets++;
    else this.provoked++;
    const sharedAbuse = this.shared?.reset(byPeer, nowMs);
    const total = this.peerResets + this.provoked;
    if (total > this.max && total > this.completed) return this.peerResets >= this.provoked ? 'rapid_reset' : 'made_you_reset';
    if (sharedAbuse === undefined || total <= this.completed) return undefined;
    // past a tenth of the budget on this connection; or on any, once the caller is far past its
    // own (SHARED_HARD_FACTOR): a tenth each, a caller reconnecting or spreading over 1,024
    // connections reset 20,000 streams in 8 s uncut (a re-review)
    return total > this.max / SHARED_CUT_SHARE || (this.shared?.farOver() ?? false) ? sharedAbuse : undefined;
  }

  /** This (shared) count is SHARED_HARD_FACTOR times past its budget and its completed streams. */
  private farOver(): boolean {
    const total = this.peerResets + this.provoked;
    return total > this.max * SHARED_HARD_FACTOR && total > this.completed;
  }
}

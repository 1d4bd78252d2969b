// One HTTP/2 connection over a socket, either role (RFC 9113): the object that owns its state
// and wires its parts together, its public API (request, ping, close, destroy), what a stream
// asks of it (StreamHost: header blocks, DATA, credit, resets). The parts: what it sends first
// and what the socket's events mean in connection-socket.ts, the SETTINGS exchange in
// connection-settings.ts, graceful close, GOAWAY and teardown in connection-close.ts, the books
// of open and reset streams in stream-registry.ts, what each received frame means in
// receive.ts, DATA scheduling in send-scheduler.ts, framing in frame-reader.ts /
// frame-writer.ts. No error escapes: a peer's violation becomes GOAWAY or
// RST_STREAM, is counted through the observer, and the socket is closed.

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { CLIENT_PREFACE, DEFAULT_HEADER_TABLE_SIZE, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, ErrorCode, MAX_STREAM_ID, defaultSettings, type Settings } from './constants.js';
import { closeGracefully, failConnection, sendGoaway, terminate } from './connection-close.js';
import type { H2ConnectionOptions, H2Observer, HeadersTooLargeAnswer, RequestOptions } from './connection-options.js';
import { openOnSocket, socketDataHandler } from './connection-socket.js';
import { HeaderListTooLargeError, SessionClosingError, StreamLimitError, type ConnectionCloseReason } from './errors.js';
import { checkRequestHead, checkStreamSlot, headFitsPeer } from './peer-limits.js';
import { ReceiveWindow, SendWindow } from './flow-control.js';
import { FrameReader } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import type { BatchWaiter } from './batch-waiters.js';
import { HeaderBlockAssembler } from './header-block.js';
import { OpenStreams } from './open-streams.js';
import { PingTracker } from './pings.js';
import { SendScheduler } from './send-scheduler.js';
import { HeadKind, type OutgoingHeaders } from './headers.js';
import { flattenHeaders } from './headers-outgoing.js';
import { HpackDecoder, HpackEncoder } from './hpack/index.js';
import { ResetBudget, WindowBudget, resolveLimits, type H2Limits } from './limits.js';
import { FrameReceiver } from './receive.js';
import type { ReceiveBudget } from './receive-budget.js';
import { H2Stream, type StreamHost } from './stream.js';
import { LateFrameAllowance, expectLateFrames, forgetStream } from './stream-registry.js';
import { sendHead } from './stream-send-side.js';

// defined in errors.ts and connection-options.ts; still exported here for whoever imports them from this module
export { HeaderListTooLargeError, SessionClosingError, StreamLimitError };
export type { H2ConnectionOptions, H2Observer, RequestOptions };

/**
 * Events: 'connect' (the peer's first SETTINGS arrived), 'stream' (server: stream, headers,
 * endStream), 'goaway' (code, lastStreamId, debug), 'remoteSettings', 'close' (reason, code),
 * 'error' (only if listened to: the connection error that ended it).
 */
export class H2Connection extends EventEmitter implements StreamHost {
  readonly isServer: boolean;
  readonly limits: H2Limits;
  readonly remoteSettings: Settings = defaultSettings();
  /** Open streams by id (both directions); not a bare Map: see open-streams.ts. */
  readonly streams = new OpenStreams<H2Stream>();
  readonly writer: FrameWriter;
  readonly decoder: HpackDecoder;
  readonly encoder: HpackEncoder;
  readonly sendWindow = new SendWindow(DEFAULT_WINDOW);
  readonly recvWindow = new ReceiveWindow(DEFAULT_WINDOW);
  /** Highest stream id of the peer's we accepted (never above lastAcceptedStreamId); next id we open. */
  lastPeerStreamId = 0;
  nextStreamId: number;
  /** The peer's first SETTINGS arrived. */
  connected = false;
  /** No new streams: GOAWAY sent or received, or a graceful close under way. */
  closing = false;
  goawayReceived = false;
  destroyed = false;
  /** Highest stream id the peer used to open a stream, ignored ones included: ids above are idle. */
  highestPeerStreamId = 0;
  /** After our final GOAWAY: peer streams above this are ignored. */
  lastAcceptedStreamId = MAX_STREAM_ID;
  /** The last stream id of the GOAWAY we sent last: a later GOAWAY never names a higher one (RFC 9113 §6.8). */
  lastGoawayStreamId = MAX_STREAM_ID;
  /** Counters for the flood budgets. */
  streamsOpenedByPeer = 0;
  dataFramesSent = 0;
  readonly settingsBudget: WindowBudget;
  readonly pingBudget: WindowBudget;
  readonly resetBudget: ResetBudget;
  readonly observer: H2Observer;
  /** What a request over the header limits is answered with (431 and these), if given. */
  readonly headersTooLargeAnswer: HeadersTooLargeAnswer | undefined;
  /** Shared with other connections, if given; `budgetHeld`: this connection's part of it. */
  readonly receiveBudget: ReceiveBudget | undefined;
  budgetHeld = 0;
  readonly blocks: HeaderBlockAssembler;
  // Internal state the connection-*.ts and stream-registry.ts functions keep (not for users).
  /** What the peer may still send on streams we closed before its END_STREAM (stream-registry.ts). */
  readonly lateFrames = new LateFrameAllowance();
  readonly scheduler: SendScheduler;
  readonly pings = new PingTracker();
  /** Waiting for the peer's SETTINGS ACK (connection-settings.ts). */
  settingsTimer: NodeJS.Timeout | undefined;
  finalGoawaySent = false;
  closeReason: ConnectionCloseReason | undefined;
  closeCode = 0;
  /** Not private: the teardown (connection-close.ts) stops it mid-chunk. */
  readonly reader: FrameReader;
  /** The socket's 'data' listener (connection-socket.ts); the teardown takes it off the socket. */
  readonly onSocketData: (chunk: Buffer) => void;
  private readonly receiver: FrameReceiver;

  constructor(
    readonly socket: Duplex,
    options: H2ConnectionOptions,
  ) {
    super();
    this.isServer = options.role === 'server';
    this.nextStreamId = this.isServer ? 2 : 1;
    const limits = (this.limits = resolveLimits(options.limits));
    this.observer = options.observer ?? {};
    this.headersTooLargeAnswer = options.headersTooLargeAnswer;
    this.receiveBudget = options.receiveBudget;
    this.settingsBudget = new WindowBudget(limits.maxSettingsPerWindow, limits.budgetWindowMs);
    this.pingBudget = new WindowBudget(limits.maxPingsPerWindow, limits.budgetWindowMs);
    if (this.receiveBudget) this.receiveBudget.resets ??= new ResetBudget(limits.maxResetsPerWindow, limits.budgetWindowMs);
    this.resetBudget = new ResetBudget(limits.maxResetsPerWindow, limits.budgetWindowMs, this.receiveBudget?.resets);
    this.blocks = new HeaderBlockAssembler(limits.maxHeaderBlockBytes, limits.maxContinuationFrames, limits.headerBlockTimeoutMs, (fault) => failConnection(this, fault));
    // until the peer ACKs a smaller table it may still use the default one
    this.decoder = new HpackDecoder({ maxTableSize: Math.max(DEFAULT_HEADER_TABLE_SIZE, limits.headerTableSize), maxHeaderListSize: limits.maxHeaderListSize });
    this.encoder = new HpackEncoder({ huffman: options.huffman ?? false, ...(options.sensitiveHeaders ? { sensitiveHeaders: options.sensitiveHeaders } : {}) });
    this.writer = new FrameWriter(socket as unknown as ConstructorParameters<typeof FrameWriter>[0]);
    this.receiver = new FrameReceiver(this);
    this.scheduler = new SendScheduler(socket, this.writer, this.sendWindow, () => this.remoteSettings.maxFrameSize);
    this.reader = new FrameReader(this.receiver, {
      maxFrameSize: Math.max(DEFAULT_MAX_FRAME_SIZE, limits.maxFrameSize),
      ...(this.isServer ? { preface: CLIENT_PREFACE } : {}),
    });

    this.onSocketData = socketDataHandler(this);
    openOnSocket(this, options.head);
  }

  /** Streams open now (both directions). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Streams ended both ways whose body still waits unread (H2Stream.holdsWindow). */
  unreadEnded = 0;

  /**
   * Streams holding a share of the connection's receive window: the open ones, and the ended
   * ones whose body nobody has read yet (their credit goes back only as it is read). A pool
   * that counted the open ones alone put more streams on a session than its window holds:
   * answers a slow app left unread filled it, and every other stream on it stalled.
   */
  get windowHolders(): number {
    return this.streams.size + this.unreadEnded;
  }

  // --- public API -----------------------------------------------------------------------------

  /** Client: opens a stream with this request head. Throws when the connection takes no new streams. */
  request(headers: OutgoingHeaders | readonly string[], options?: RequestOptions): H2Stream {
    if (this.isServer) throw new Error('request() is for the client role');
    if (this.closing || this.destroyed) throw new SessionClosingError('the HTTP/2 connection is closing');
    // within the peer's limits, checked before a stream id is taken (peer-limits.ts)
    checkStreamSlot(this);
    const flat = flattenHeaders(headers, HeadKind.Request);
    checkRequestHead(this, flat);
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID) {
      this.close();
      throw new SessionClosingError('stream ids are exhausted on this connection');
    }
    this.nextStreamId += 2;
    const stream = new H2Stream(id, this, this.remoteSettings.initialWindowSize, this.limits.initialWindowSize);
    stream.isHeadRequest = isHead(flat);
    this.streams.set(id, stream);
    if (options?.waitForTrailers) stream.wantTrailers = true;
    sendHead(stream, flat, options?.endStream === true);
    return stream;
  }

  /** Sends a PING; the callback gets the round trip in ms, or an error if the connection ends first. */
  ping(callback: (err: Error | null, durationMs: number) => void = noop): void {
    if (this.destroyed) return callback(new SessionClosingError('the connection is closed'), 0);
    this.pings.send(this.writer, callback);
  }

  /** Graceful close: no new streams, those in flight finish, then the socket ends (connection-close.ts). */
  close(): void {
    closeGracefully(this);
  }

  /**
   * Ends the connection now: a last GOAWAY (`code`, NO_ERROR if none is given, as Node's
   * session.destroy() sends) so the peer learns which streams were processed, every open stream reset.
   */
  destroy(code?: number, reason: ConnectionCloseReason = 'destroyed'): void {
    if (this.destroyed) return;
    if (this.socket.writable) sendGoaway(this, this.lastPeerStreamId, code ?? ErrorCode.NO_ERROR);
    terminate(this, reason, code ?? ErrorCode.NO_ERROR);
  }

  // --- StreamHost -----------------------------------------------------------------------------

  sendHeaderBlock(stream: H2Stream, flat: string[], endStream: boolean): boolean {
    // a stream reset already (e.g. its 1xx head was over the peer's limit) sends no further head
    if (this.destroyed || stream.rstCode !== undefined) return false;
    // a client's request head was measured by request(); every other head and trailers here
    if ((this.isServer || stream.trailersWanted) && !headFitsPeer(this, stream, flat)) return false;
    this.writer.headers(stream.id, this.encoder.encode(flat), endStream, this.remoteSettings.maxFrameSize);
    return true;
  }

  wantsToSend(stream: H2Stream): void {
    if (!this.destroyed) this.scheduler.add(stream);
  }

  frameHeldData(stream: H2Stream, payload: Buffer, waiter: BatchWaiter): void {
    this.dataFramesSent++;
    this.writer.data(stream.id, payload, false, waiter);
  }

  frameData(streamId: number, payload: Buffer, endStream: boolean): void {
    this.dataFramesSent++;
    if (endStream && payload.length === 0 && this.writer.markEndStream(streamId)) return;
    this.writer.data(streamId, payload, endStream);
  }

  /**
   * Streams whose small payloads of the current socket read wait in their tails
   * (releaseAfterRead); released once the chunk is read (connection-socket.ts).
   */
  releases: H2Stream[] = [];

  releaseAfterRead(stream: H2Stream): void {
    this.releases.push(stream);
  }

  /** `counted`: false for bytes given back on arrival, before a stream took them (never held). */
  returnCredit(stream: H2Stream, n: number, counted = true): void {
    if (this.destroyed) return;
    if (counted && this.receiveBudget !== undefined) {
      const released = Math.min(n, this.budgetHeld);
      this.budgetHeld -= released;
      this.receiveBudget.held -= released;
    }
    const increment = this.recvWindow.consume(n);
    if (increment > 0) this.writer.windowUpdate(0, increment);
    if (stream.holdsWindow && stream.creditedBytes >= stream.pushedBytes) {
      stream.holdsWindow = false;
      this.unreadEnded--;
    }
    if (!stream.remoteClosed) {
      const streamIncrement = stream.recvWindow.consume(n);
      if (streamIncrement > 0) this.writer.windowUpdate(stream.id, streamIncrement);
    }
  }

  resetStream(stream: H2Stream, code: number): void {
    if (stream.protocolClosed) return;
    // the peer's frames already on the way for it are then ignored, not stream errors
    expectLateFrames(this, stream);
    stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
    forgetStream(this, stream);
    if (!this.destroyed) this.writer.rstStream(stream.id, code);
  }

  streamCompleted(stream: H2Stream): void {
    forgetStream(this, stream);
    if (stream.pushedBytes > stream.creditedBytes) {
      stream.holdsWindow = true;
      this.unreadEnded++;
    }
    this.resetBudget.completedStream(performance.now());
  }

  // --- used by the receiver and the stream books -------------------------------------------

  pingAcked(payload: Buffer): void {
    this.pings.acked(payload);
  }

  /** A graceful close (or the peer's GOAWAY) is under way: ends the connection once nothing is left. */
  maybeFinish(): void {
    if (this.destroyed || !this.closing || this.streams.size > 0) return;
    if (this.isServer && !this.finalGoawaySent && !this.goawayReceived) return;
    terminate(this, this.closeReason ?? 'normal', this.closeCode);
  }

  /** Streams whose send window opened again (SETTINGS_INITIAL_WINDOW_SIZE grew, or WINDOW_UPDATE). */
  unblock(stream: H2Stream): void {
    if (stream.windowBlocked && stream.sendWindow.available > 0) {
      stream.windowBlocked = false;
      this.wantsToSend(stream);
    }
  }

  // --- sending --------------------------------------------------------------------------------

  /** Frames what the streams have queued, as far as the windows allow (send-scheduler.ts). */
  sendPending(): void {
    if (!this.destroyed) this.scheduler.run();
  }
}

function noop(): void {}

function isHead(flat: readonly string[]): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === ':method') return flat[i + 1] === 'HEAD';
  return false;
}

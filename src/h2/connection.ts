// One HTTP/2 connection over a socket, either role (RFC 9113): the preface and SETTINGS
// exchange (with an ACK timeout), PING, GOAWAY (two-step when graceful), the send loop that
// spends both flow-control windows fairly across streams, and the connection-level parts of
// every limit. What each received frame means for a stream is in receive.ts; framing is in
// frame-reader.ts / frame-writer.ts. No error escapes: a peer's violation becomes GOAWAY or
// RST_STREAM, is counted through the observer, and the socket is closed.

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { CLIENT_PREFACE, DEFAULT_HEADER_TABLE_SIZE, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, ErrorCode, MAX_STREAM_ID, SettingId, defaultSettings, type Settings } from './constants.js';
import { ConnectionFault, H2ConnectionError, H2StreamError, type ConnectionCloseReason, type StreamErrorReason } from './errors.js';
import { ReceiveWindow, SendWindow } from './flow-control.js';
import { FrameReader } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import { HeaderBlockAssembler } from './header-block.js';
import { PingTracker } from './pings.js';
import { SendScheduler } from './send-scheduler.js';
import { flattenHeaders, type OutgoingHeaders } from './headers.js';
import { HpackDecoder, HpackEncoder } from './hpack/index.js';
import { ResetBudget, WindowBudget, resolveLimits, type H2Limits } from './limits.js';
import { FrameReceiver } from './receive.js';
import { H2Stream, type StreamHost } from './stream.js';

export interface H2Observer {
  /** Once per connection, when it is gone. */
  connectionClosed?(reason: ConnectionCloseReason, h2Code: number): void;
  /** Each stream error we raised (RST_STREAM sent because of the peer). */
  streamError?(reason: StreamErrorReason, h2Code: number): void;
}

export interface H2ConnectionOptions {
  readonly role: 'client' | 'server';
  readonly limits?: Partial<H2Limits>;
  readonly observer?: H2Observer;
  /** Huffman-code header strings when shorter (default true). */
  readonly huffman?: boolean;
  /** Bytes already read from the socket (e.g. by a protocol sniffer), processed first. */
  readonly head?: Buffer;
}

export interface RequestOptions {
  /** No request body: HEADERS carries END_STREAM. */
  readonly endStream?: boolean;
  /** Emit 'wantTrailers' at the end of the body and wait for sendTrailers(). */
  readonly waitForTrailers?: boolean;
}

export class SessionClosingError extends Error {
  readonly code = 'ERR_H2_SESSION_CLOSING';
}

/** How long the graceful close waits for the PING that follows the first GOAWAY. */
const GOAWAY_PING_TIMEOUT_MS = 2_000;
/** Streams we reset whose late frames are ignored rather than treated as errors. */
const RECENT_RESETS = 128;

/**
 * Events: 'connect' (the peer's first SETTINGS arrived), 'stream' (server: stream, headers,
 * endStream), 'goaway' (code, lastStreamId, debug), 'remoteSettings', 'close' (reason, code),
 * 'error' (only if listened to: the connection error that ended it).
 */
export class H2Connection extends EventEmitter implements StreamHost {
  readonly isServer: boolean;
  readonly limits: H2Limits;
  readonly remoteSettings: Settings = defaultSettings();
  /** Open streams by id (both directions). */
  readonly streams = new Map<number, H2Stream>();
  readonly writer: FrameWriter;
  readonly decoder: HpackDecoder;
  readonly encoder: HpackEncoder;
  readonly sendWindow = new SendWindow(DEFAULT_WINDOW);
  readonly recvWindow = new ReceiveWindow(DEFAULT_WINDOW);
  /** Highest stream id the peer opened; next id we open. */
  lastPeerStreamId = 0;
  nextStreamId: number;
  /** The peer's first SETTINGS arrived. */
  connected = false;
  /** No new streams: GOAWAY sent or received, or a graceful close under way. */
  closing = false;
  goawayReceived = false;
  destroyed = false;
  /** After our final GOAWAY: peer streams above this are ignored. */
  lastAcceptedStreamId = MAX_STREAM_ID;
  /** Counters for the flood budgets. */
  streamsOpenedByPeer = 0;
  dataFramesSent = 0;
  readonly settingsBudget: WindowBudget;
  readonly pingBudget: WindowBudget;
  readonly resetBudget: ResetBudget;
  readonly observer: H2Observer;
  readonly blocks: HeaderBlockAssembler;
  private readonly recentResets = new Set<number>();
  private readonly reader: FrameReader;
  private readonly receiver: FrameReceiver;
  private readonly scheduler: SendScheduler;
  private readonly pings = new PingTracker();
  private settingsTimer: NodeJS.Timeout | undefined;
  private finalGoawaySent = false;
  private closeReason: ConnectionCloseReason | undefined;
  private closeCode = 0;

  constructor(
    readonly socket: Duplex,
    options: H2ConnectionOptions,
  ) {
    super();
    this.isServer = options.role === 'server';
    this.nextStreamId = this.isServer ? 2 : 1;
    const limits = (this.limits = resolveLimits(options.limits));
    this.observer = options.observer ?? {};
    this.settingsBudget = new WindowBudget(limits.maxSettingsPerWindow, limits.budgetWindowMs);
    this.pingBudget = new WindowBudget(limits.maxPingsPerWindow, limits.budgetWindowMs);
    this.resetBudget = new ResetBudget(limits.maxResetsPerWindow, limits.budgetWindowMs);
    this.blocks = new HeaderBlockAssembler(limits.maxHeaderBlockBytes, limits.maxContinuationFrames);
    // until the peer ACKs a smaller table it may still use the default one
    this.decoder = new HpackDecoder({ maxTableSize: Math.max(DEFAULT_HEADER_TABLE_SIZE, limits.headerTableSize), maxHeaderListSize: limits.maxHeaderListSize });
    this.encoder = new HpackEncoder({ huffman: options.huffman ?? true });
    this.writer = new FrameWriter(socket as unknown as ConstructorParameters<typeof FrameWriter>[0]);
    this.receiver = new FrameReceiver(this);
    this.scheduler = new SendScheduler(socket, this.writer, this.sendWindow, () => this.remoteSettings.maxFrameSize);
    this.reader = new FrameReader(this.receiver, {
      maxFrameSize: Math.max(DEFAULT_MAX_FRAME_SIZE, limits.maxFrameSize),
      ...(this.isServer ? { preface: CLIENT_PREFACE } : {}),
    });

    socket.on('data', this.onSocketData);
    socket.on('drain', this.onSocketDrain);
    socket.on('error', this.onSocketError);
    socket.on('end', this.onSocketEnd);
    socket.on('close', this.onSocketClose);
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

    if (!this.isServer) this.writer.raw(CLIENT_PREFACE);
    this.writer.settings(this.localSettings());
    const increment = this.recvWindow.growTo(limits.connectionWindowSize);
    if (increment > 0) this.writer.windowUpdate(0, increment);
    this.settingsTimer = setTimeout(() => this.fail(new ConnectionFault('settings_timeout', ErrorCode.SETTINGS_TIMEOUT, 'the peer did not acknowledge our SETTINGS')), limits.settingsTimeoutMs);
    this.settingsTimer.unref();
    if (options.head !== undefined && options.head.length > 0) this.onSocketData(options.head);
    // a socket paused by whoever handed it over would never deliver a frame
    socket.resume();
  }

  private localSettings(): number[] {
    const l = this.limits;
    const s: number[] = [];
    if (l.headerTableSize !== DEFAULT_HEADER_TABLE_SIZE) s.push(SettingId.HEADER_TABLE_SIZE, l.headerTableSize);
    if (!this.isServer) s.push(SettingId.ENABLE_PUSH, 0);
    s.push(SettingId.MAX_CONCURRENT_STREAMS, l.maxConcurrentStreams);
    s.push(SettingId.INITIAL_WINDOW_SIZE, l.initialWindowSize);
    if (l.maxFrameSize !== DEFAULT_MAX_FRAME_SIZE) s.push(SettingId.MAX_FRAME_SIZE, l.maxFrameSize);
    s.push(SettingId.MAX_HEADER_LIST_SIZE, l.maxHeaderListSize);
    return s;
  }

  /** Streams open now (both directions). */
  get activeStreams(): number {
    return this.streams.size;
  }

  // --- public API -----------------------------------------------------------------------------

  /** Client: opens a stream with this request head. Throws when the connection takes no new streams. */
  request(headers: OutgoingHeaders | readonly string[], options?: RequestOptions): H2Stream {
    if (this.isServer) throw new Error('request() is for the client role');
    if (this.closing || this.destroyed) throw new SessionClosingError('the HTTP/2 connection is closing');
    const flat = flattenHeaders(headers);
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
    stream.sendHead(flat, options?.endStream === true);
    return stream;
  }

  /** Sends a PING; the callback gets the round trip in ms, or an error if the connection ends first. */
  ping(callback: (err: Error | null, durationMs: number) => void = noop): void {
    if (this.destroyed) return callback(new SessionClosingError('the connection is closed'), 0);
    this.pings.send(this.writer, callback);
  }

  /**
   * Graceful close: no new streams, those in flight finish, then the socket ends. A server
   * sends GOAWAY(2^31 − 1) first, then after one PING round trip GOAWAY with the real last
   * stream id, so requests already on the wire are not lost (RFC 9113 §6.8).
   */
  close(): void {
    if (this.closing || this.destroyed) {
      this.maybeFinish();
      return;
    }
    this.closing = true;
    if (!this.isServer) {
      this.writer.goaway(0, ErrorCode.NO_ERROR);
      this.finalGoawaySent = true;
      this.maybeFinish();
      return;
    }
    this.writer.goaway(MAX_STREAM_ID, ErrorCode.NO_ERROR);
    let done = false;
    const second = (): void => {
      if (done || this.destroyed) return;
      done = true;
      clearTimeout(timer);
      this.lastAcceptedStreamId = this.lastPeerStreamId;
      this.writer.goaway(this.lastPeerStreamId, ErrorCode.NO_ERROR);
      this.finalGoawaySent = true;
      this.maybeFinish();
    };
    const timer = setTimeout(second, GOAWAY_PING_TIMEOUT_MS);
    timer.unref();
    this.ping(second);
  }

  /** Ends the connection now: GOAWAY with `code` (if given), every open stream reset. */
  destroy(code?: number, reason: ConnectionCloseReason = 'destroyed'): void {
    if (this.destroyed) return;
    if (code !== undefined) this.writer.goaway(this.lastPeerStreamId, code);
    this.terminate(reason, code ?? ErrorCode.NO_ERROR);
  }

  // --- StreamHost -----------------------------------------------------------------------------

  sendHeaderBlock(stream: H2Stream, flat: string[], endStream: boolean): void {
    if (this.destroyed) return;
    this.writer.headers(stream.id, this.encoder.encode(flat), endStream, this.remoteSettings.maxFrameSize);
  }

  wantsToSend(stream: H2Stream): void {
    if (!this.destroyed) this.scheduler.add(stream);
  }

  frameData(streamId: number, payload: Buffer, endStream: boolean): void {
    this.dataFramesSent++;
    if (endStream && payload.length === 0 && this.writer.markEndStream(streamId)) return;
    this.writer.data(streamId, payload, endStream);
  }

  returnCredit(stream: H2Stream, n: number): void {
    if (this.destroyed) return;
    const increment = this.recvWindow.consume(n);
    if (increment > 0) this.writer.windowUpdate(0, increment);
    if (!stream.remoteClosed) {
      const streamIncrement = stream.recvWindow.consume(n);
      if (streamIncrement > 0) this.writer.windowUpdate(stream.id, streamIncrement);
    }
  }

  resetStream(stream: H2Stream, code: number): void {
    if (stream.protocolClosed) return;
    stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
    this.forget(stream);
    // the peer's frames already on the way for it are then ignored, not stream errors
    this.rememberReset(stream.id);
    if (!this.destroyed) this.writer.rstStream(stream.id, code);
  }

  streamCompleted(stream: H2Stream): void {
    this.forget(stream);
    this.resetBudget.completedStream(Date.now());
  }

  // --- used by the receiver -------------------------------------------------------------------

  /** Removes a stream from the books (closed or reset); a graceful close may now finish. */
  forget(stream: H2Stream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.maybeFinish();
  }

  rememberReset(streamId: number): void {
    if (this.recentResets.size >= RECENT_RESETS) this.recentResets.delete(this.recentResets.values().next().value as number);
    this.recentResets.add(streamId);
  }

  wasReset(streamId: number): boolean {
    return this.recentResets.has(streamId);
  }

  /** A stream id of the peer's parity it has not opened yet, or of ours we have not. */
  isIdle(streamId: number): boolean {
    const peerParity = (streamId & 1) === (this.isServer ? 1 : 0);
    return peerParity ? streamId > this.lastPeerStreamId : streamId >= this.nextStreamId;
  }

  /**
   * A stream error caused by the peer: RST_STREAM with `code`, counted, and the stream (if we
   * have it) ended with that error. Too many of them is MadeYouReset: the connection goes.
   */
  streamError(streamId: number, code: number, reason: StreamErrorReason, countAsProvoked = true): void {
    const stream = this.streams.get(streamId);
    this.writer.rstStream(streamId, code);
    this.rememberReset(streamId);
    this.observer.streamError?.(reason, code);
    if (stream) {
      this.forget(stream);
      stream.receiveReset(code, reason);
    }
    if (countAsProvoked) {
      const abuse = this.resetBudget.reset(false, Date.now());
      if (abuse) throw new ConnectionFault(abuse, ErrorCode.ENHANCE_YOUR_CALM, 'the peer keeps making us reset streams');
    }
  }

  /** The peer's SETTINGS ACK. */
  settingsAcked(): void {
    if (this.settingsTimer) {
      clearTimeout(this.settingsTimer);
      this.settingsTimer = undefined;
      if (this.limits.headerTableSize < DEFAULT_HEADER_TABLE_SIZE) this.decoder.setMaxTableSize(this.limits.headerTableSize);
    }
  }

  /** The peer's first SETTINGS arrived. */
  markConnected(): void {
    if (this.connected) return;
    this.connected = true;
    this.emit('connect', this);
  }

  pingAcked(payload: Buffer): void {
    this.pings.acked(payload);
  }

  goawayFromPeer(lastStreamId: number, code: number, debug: Buffer): void {
    this.goawayReceived = true;
    this.closing = true;
    if (code !== ErrorCode.NO_ERROR) {
      this.closeReason ??= 'peer_goaway';
      this.closeCode = code;
    }
    // our streams the peer never processed: safe to retry elsewhere
    for (const stream of [...this.streams.values()]) {
      const ours = (stream.id & 1) === (this.isServer ? 0 : 1);
      if (ours && stream.id > lastStreamId) {
        stream.localClosed = stream.remoteClosed = stream.protocolClosed = true;
        this.forget(stream);
        stream.receiveReset(ErrorCode.REFUSED_STREAM, 'refused');
      }
    }
    this.emit('goaway', code, lastStreamId, Buffer.from(debug));
    this.maybeFinish();
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

  // --- socket ---------------------------------------------------------------------------------

  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.destroyed) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.fail(err instanceof ConnectionFault ? err : new ConnectionFault('internal_error', ErrorCode.INTERNAL_ERROR, `internal error: ${(err as Error)?.message}`));
      return;
    }
    // a peer that floods us with frames needing an answer while never reading its socket
    if (this.socket.writableLength + this.writer.pending > this.limits.maxOutboundBuffer) {
      this.writer.discard();
      this.fail(new ConnectionFault('outbound_flood', ErrorCode.ENHANCE_YOUR_CALM, 'the peer does not read what it makes us send'));
    }
  };

  private readonly onSocketDrain = (): void => this.sendPending();

  private readonly onSocketError = (): void => this.terminate('socket_error', ErrorCode.INTERNAL_ERROR);

  private readonly onSocketEnd = (): void => {
    // the peer leaving with nothing in flight (idle, or after its GOAWAY) is an ordinary end
    const clean = this.goawayReceived || this.streams.size === 0;
    if (!this.destroyed) this.writer.flush();
    (this.socket as Duplex).end();
    this.terminate(clean ? 'normal' : 'socket_error', ErrorCode.NO_ERROR);
  };

  private readonly onSocketClose = (): void => {
    this.terminate(this.streams.size === 0 ? 'normal' : 'socket_error', ErrorCode.NO_ERROR);
  };

  /** A connection error: GOAWAY with its code, then close. */
  fail(fault: ConnectionFault): void {
    if (this.destroyed) return;
    this.writer.goaway(this.lastPeerStreamId, fault.h2Code, Buffer.from(fault.message.slice(0, 256)));
    if (this.listenerCount('error') > 0) this.emit('error', new H2ConnectionError(fault.reason, fault.h2Code, fault.message));
    this.terminate(fault.reason, fault.h2Code);
  }

  private maybeFinish(): void {
    if (this.destroyed || !this.closing || this.streams.size > 0) return;
    if (this.isServer && !this.finalGoawaySent && !this.goawayReceived) return;
    this.terminate(this.closeReason ?? 'normal', this.closeCode);
  }

  /** Ends everything once: streams reset, timers stopped, what is queued flushed, socket ended. */
  private terminate(reason: ConnectionCloseReason, code: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closing = true;
    this.closeReason ??= reason;
    if (this.closeReason === reason) this.closeCode = code;
    if (this.settingsTimer) clearTimeout(this.settingsTimer);
    this.pings.failAll(new SessionClosingError('the HTTP/2 connection closed'));
    for (const stream of [...this.streams.values()]) stream.lose(new H2StreamError('connection_lost', code, `the HTTP/2 connection closed (${this.closeReason})`));
    this.streams.clear();
    this.scheduler.clear();
    this.writer.flush();
    const socket = this.socket;
    socket.off('data', this.onSocketData);
    if (!socket.destroyed) {
      socket.end();
      // a peer that never closes its side: the socket goes after a grace period
      setTimeout(() => socket.destroy(), 1_000).unref();
    }
    this.observer.connectionClosed?.(this.closeReason, this.closeCode);
    this.emit('close', this.closeReason, this.closeCode);
  }
}

function noop(): void {}

function isHead(flat: readonly string[]): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === ':method') return flat[i + 1] === 'HEAD';
  return false;
}

// The one view the forwarders have of a stream toward an upstream, whichever HTTP/2 codec made
// it: Node's ClientHttp2Stream (`http2.codec: node`) or src/h2's H2Stream (`meshcar`). Both are
// Duplexes with the same event names ('response', 'trailers', 'continue', 'wantTrailers',
// 'error', 'close'); two differences are bridged here:
// - 'response' carries Node's frame flags, or H2Stream's endStream boolean: responseEnds().
// - H2Stream has no setTimeout(): adaptH2Stream() gives it one with Node's meaning (no bytes
//   either way for `ms` emits 'timeout'), checked by polling its byte counters a few times per
//   period (in a shared deadline queue), so the hot path (every DATA frame) pays nothing.

import { constants as h2 } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http2';
import { addAbortSignal, type Duplex } from 'node:stream';
import type { H2Stream } from '../h2/index.js';
import { DeadlineQueue, type Deadline } from '../http/deadline-queue.js';

/**
 * Bytes the session `up` is on has not handed to the kernel yet. On src/h2 a stream's write is
 * called back once its DATA is framed, so a small upload can wait in the TLS socket's queue
 * (behind a session whose path stopped taking bytes) while the stream's own queue is empty.
 * Node's codec calls a write back only once the socket took it: 0 there.
 */
export function sessionWriteBacklog(up: UpstreamStream): number {
  const socket = (meshcarConnectionOf(up) as { readonly socket?: Duplex } | undefined)?.socket;
  return socket?.writableLength ?? 0;
}

/** The src/h2 connection a meshcar-codec stream is on; undefined for Node's (core http2 streams have `pending`). */
export function meshcarConnectionOf(up: UpstreamStream): H2Stream['host'] | undefined {
  return 'pending' in up ? undefined : (up as unknown as H2Stream).host;
}

/** What the attempt controller (attempt.ts) and its forwarders, expect-continue.ts and the pool use of a stream. */
export interface UpstreamStream extends Duplex {
  /** RST_STREAM code once reset (Node: set when closed; H2Stream: undefined unless reset). */
  readonly rstCode: number | undefined;
  /** RST_STREAM with `code` (unless already closed) and destroy. */
  close(code?: number): void;
  /** After 'wantTrailers': ends the request with a trailers block. */
  sendTrailers(headers: OutgoingHttpHeaders): void;
  /** No bytes either way for `ms` → 'timeout' (0 stops the timer). */
  setTimeout(ms: number, callback?: () => void): void;
}

/** Whether a 'response' event's second argument says the response has no body. */
export function responseEnds(flagsOrEnd: number | boolean): boolean {
  return typeof flagsOrEnd === 'boolean' ? flagsOrEnd : (flagsOrEnd & h2.NGHTTP2_FLAG_END_STREAM) !== 0;
}

const ABORTED = AbortSignal.abort();

/**
 * RST_STREAM CANCEL and nothing else, also while the request body is still being sent: Node's
 * close(code) first ends a writable side still open, so END_STREAM goes out ahead of the reset
 * (an unfinished upload may look finished, or break its content-length: PROTOCOL_ERROR).
 * Destroyed with Node's AbortError (addAbortSignal's way), a core stream is reset with CANCEL
 * alone and emits that error; H2Stream's close() sends the reset alone.
 */
export function cancelStream(up: UpstreamStream): void {
  if ('pending' in up) addAbortSignal(ABORTED, up); // core http2 (H2Stream has no `pending`)
  else up.close(h2.NGHTTP2_CANCEL);
}

/** A nonzero RST_STREAM code: the stream was cut, not finished. */
export function wasReset(code: number | undefined): code is number {
  return code !== undefined && code !== h2.NGHTTP2_NO_ERROR;
}

// The codes a peer's RST_STREAM may carry that are passed on to the app as they are, once its
// answer is cut after the head (attempt.ts): what the stream's own failure was. Never CANCEL
// (the app would read "you cancelled", and a gRPC watch loop would not reconnect),
// ENHANCE_YOUR_CALM (the app did nothing to calm down: it is about the mesh hop), REFUSED_STREAM
// (its head was relayed: the request was taken), nor codes of the connection or of TLS.
const PASSED_ON = new Set<number>([
  h2.NGHTTP2_PROTOCOL_ERROR,
  h2.NGHTTP2_INTERNAL_ERROR,
  h2.NGHTTP2_FLOW_CONTROL_ERROR,
  h2.NGHTTP2_STREAM_CLOSED,
  h2.NGHTTP2_FRAME_SIZE_ERROR,
  h2.NGHTTP2_CONNECT_ERROR,
]);

/**
 * Whether `up` was reset itself (the peer's RST_STREAM for it, or the codec's stream error on
 * what the peer sent for it), rather than taken down with its session (`err`: the error the
 * stream was destroyed with; by default the one it recorded). Node sets rstCode itself when a
 * stream goes down with its session: CANCEL when the socket closed, the GOAWAY's code when the
 * peer sent one with an error (GOAWAY(ENHANCE_YOUR_CALM) leaves every stream of the session
 * with rstCode ENHANCE_YOUR_CALM); its own reset ends a Node stream with ERR_HTTP2_STREAM_ERROR,
 * its session's end with the session's error. src/h2 sets rstCode only for a reset of the
 * stream itself (a lost connection leaves it undefined; a GOAWAY resets only the streams above
 * its last id, with REFUSED_STREAM).
 */
export function resetItself(up: UpstreamStream, err: unknown = up.errored): boolean {
  if (up.rstCode === undefined) return false;
  if ('pending' in up) return (err as { code?: unknown } | null | undefined)?.code === 'ERR_HTTP2_STREAM_ERROR'; // core http2 (H2Stream has no `pending`)
  return true;
}

/**
 * The code to pass on to the app when the upstream stream broke after its head (`err`: the
 * stream's error, by default the one it recorded): a code the peer sent in RST_STREAM for this
 * very stream (resetItself), or undefined (the app's answer is then reset with INTERNAL_ERROR,
 * as on a lost connection).
 */
export function peerResetCode(up: UpstreamStream, err: unknown = up.errored): number | undefined {
  const code = up.rstCode;
  if (code === undefined || !PASSED_ON.has(code) || !resetItself(up, err)) return undefined;
  return code;
}

const IDLE = Symbol('meshcar.idleTimer');

interface IdleTimer {
  ms: number;
  /** Polling period: idleness is detected between `ms` and `ms + tick` after the last byte. */
  tick: number;
  quietMs: number;
  seen: number;
  timer: Deadline<Adapted> | undefined;
}

type Adapted = H2Stream & { [IDLE]?: IdleTimer; setTimeout(ms: number, callback?: () => void): void };

function activity(stream: H2Stream): number {
  return stream.bytesSent + stream.dataReceived + (stream.headReceived ? 1 : 0);
}

function idleTick(stream: Adapted): void {
  const state = stream[IDLE];
  if (state === undefined) return;
  state.timer = undefined;
  if (stream.destroyed || state.ms === 0) return;
  const now = activity(stream);
  if (now !== state.seen) {
    state.seen = now;
    state.quietMs = 0;
  } else state.quietMs += state.tick;
  if (state.quietMs >= state.ms) {
    stream.emit('timeout');
    return;
  }
  state.timer = IDLE_TICKS.add(stream, state.tick);
}

// the polls of every stream: one timer per period, not one per stream (src/http/deadline-queue.ts)
const IDLE_TICKS = new DeadlineQueue<Adapted>(idleTick);

// one shared function, installed on each stream (no closure per request)
function setIdleTimeout(this: Adapted, ms: number, callback?: () => void): void {
  if (callback) this.on('timeout', callback); // as Node's Http2Stream#setTimeout
  let state = this[IDLE];
  state?.timer?.cancel();
  if (ms <= 0) {
    if (state) state.ms = 0;
    return;
  }
  const tick = Math.max(5, Math.ceil(ms / 4));
  if (state === undefined) {
    state = this[IDLE] = { ms, tick, quietMs: 0, seen: 0, timer: undefined };
    // a pending poll holds the stream: it goes when the stream does, not a tick later
    this.on('close', stopIdleTimer); // on(): 'close' comes once, and once() would wrap it in a closure per stream
  }
  state.ms = ms;
  state.tick = tick;
  state.quietMs = 0;
  state.seen = activity(this);
  state.timer = IDLE_TICKS.add(this, tick);
}

function stopIdleTimer(this: Adapted): void {
  const state = this[IDLE];
  state?.timer?.cancel();
  if (state) state.timer = undefined;
}

/** An H2Stream as an UpstreamStream: adds setTimeout() with Node's meaning. */
export function adaptH2Stream(stream: H2Stream): UpstreamStream {
  (stream as Adapted).setTimeout = setIdleTimeout;
  return stream as Adapted as unknown as UpstreamStream;
}

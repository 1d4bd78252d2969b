// `inbound.limits`: what one caller, or one address, may hold of the sidecar and the app. The
// HTTP/2 limits (streams, head size, rapid resets, session age) and the resource caps the
// inbound enforces per caller identity, per remote address and toward the app, each with the
// default it had as a constant in code before it was a key. Read here, applied at start (a
// change needs a restart, as for the rest of `inbound.limits`).

import { readDuration, readPositiveInteger } from './fields.js';
import { readSize } from './openapi-config.js';
import type { YamlValue } from './yaml-value.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const INBOUND_LIMITS_KEYS: readonly string[] = ['maxConcurrentStreams', 'maxHeaderListSize', 'maxResetsPer10s', 'maxSessionAge', 'maxConnectionsPerCaller', 'maxHandshakesPerAddress', 'maxHandshakes', 'maxBufferedPerCaller', 'maxPipelined', 'maxAppConnections', 'maxAppWaiting'];

export interface InboundLimitsConfig {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  readonly maxConcurrentStreams: number;
  /** Request head size in bytes (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1 431 beyond it). */
  readonly maxHeaderListSize: number;
  /** Streams an HTTP/2 caller may reset within 10 s (while resets outnumber completed streams) before GOAWAY. */
  readonly maxResetsPer10s: number;
  /** An HTTP/2 session older than this (±10%) gets GOAWAY and closes once its streams are done. Absent: DEFAULT_INBOUND_MAX_SESSION_AGE_MS. */
  readonly maxSessionAgeMs?: number;
  /** Verified connections open at once per caller SPIFFE ID; more are closed before a request is read. */
  readonly maxConnectionsPerCaller: number;
  /** TLS handshakes in progress from one remote address; more are closed as they are accepted. */
  readonly maxHandshakesPerAddress: number;
  /** TLS handshakes in progress on the listener, all addresses together; at the cap the oldest is closed. */
  readonly maxHandshakes: number;
  /** Request body bytes one caller identity's HTTP/2 connections may hold unread at once (own codec); beyond, the stream is reset. */
  readonly maxBufferedPerCaller: number;
  /** HTTP/1.1 requests in flight on one caller connection (pipelined); beyond, the connection is closed. */
  readonly maxPipelined: number;
  /** Connections to an HTTP/1.1 app; requests beyond wait, callers taking turns. */
  readonly maxAppConnections: number;
  /** h2c app: requests that may wait for a stream slot when every session is at the app's limit; beyond, 503. */
  readonly maxAppWaiting: number;
}

export const DEFAULT_INBOUND_LIMITS: InboundLimitsConfig = Object.freeze({
  maxConcurrentStreams: 250,
  maxHeaderListSize: 16 * 1024,
  maxResetsPer10s: 200,
  maxConnectionsPerCaller: 1024,
  maxHandshakesPerAddress: 256,
  // about 60 KB of handshake state each (OpenSSL's, the socket's): ~60 MB at most
  maxHandshakes: 1024,
  // one HTTP/2 connection's whole receive window: a caller that fills one connection's window
  // to a stalled app is not cut short; six connections' worth is (they took +333 MB before)
  maxBufferedPerCaller: 64 * 1024 * 1024,
  maxPipelined: 32,
  maxAppConnections: 256,
  maxAppWaiting: 1000,
});
/** As the outbound side: a caller connects again (with a current certificate) at least this often. */
export const DEFAULT_INBOUND_MAX_SESSION_AGE_MS = 10 * 60_000;

/**
 * The most `limits.maxConcurrentStreams` takes. The value goes out as HTTP/2's
 * SETTINGS_MAX_CONCURRENT_STREAMS, a 32-bit field: beyond 2^32-1 both codecs throw on the first
 * HTTP/2 caller (Node: ERR_HTTP2_INVALID_SETTING_VALUE; meshcar: ERR_OUT_OF_RANGE), which killed
 * the sidecar. Well below that, 10000 streams on one connection is already 40 times the default
 * and more than any app behind one sidecar serves at once; a larger value only lets one caller
 * hold more of the app.
 */
export const MAX_CONCURRENT_STREAMS = 10_000;

/** Upper bounds of the caps: each well past any sane setting, each below what would break a count or a file-descriptor table. */
const CAP_MAX = { connections: 1_000_000, handshakes: 100_000, pipelined: 1024, appConnections: 65_535, appWaiting: 1_000_000 };
/** One caller's unread bodies: at least one stream's 64 KiB window (less would reset ordinary uploads), at most 4 GiB. */
const BUFFERED_MIN = 64 * 1024;
const BUFFERED_MAX = 4 * 1024 * 1024 * 1024;

export function readInboundLimits(value: YamlValue): InboundLimitsConfig | undefined {
  const map = value.map(INBOUND_LIMITS_KEYS);
  if (!map) return undefined;
  const d = DEFAULT_INBOUND_LIMITS;
  const limits = {
    maxConcurrentStreams: map.optional('maxConcurrentStreams', (v) => readPositiveInteger(v, MAX_CONCURRENT_STREAMS, ' streams per HTTP/2 connection'), d.maxConcurrentStreams),
    maxHeaderListSize: map.optional('maxHeaderListSize', readHeaderListSize, d.maxHeaderListSize),
    maxResetsPer10s: map.optional('maxResetsPer10s', readPositiveInteger, d.maxResetsPer10s),
    maxConnectionsPerCaller: map.optional('maxConnectionsPerCaller', (v) => readPositiveInteger(v, CAP_MAX.connections, ' connections per caller'), d.maxConnectionsPerCaller),
    maxHandshakesPerAddress: map.optional('maxHandshakesPerAddress', (v) => readPositiveInteger(v, CAP_MAX.handshakes, ' handshakes per address'), d.maxHandshakesPerAddress),
    maxHandshakes: map.optional('maxHandshakes', (v) => readPositiveInteger(v, CAP_MAX.handshakes, ' handshakes in progress'), d.maxHandshakes),
    maxBufferedPerCaller: map.optional('maxBufferedPerCaller', readBufferedPerCaller, d.maxBufferedPerCaller),
    maxPipelined: map.optional('maxPipelined', (v) => readPositiveInteger(v, CAP_MAX.pipelined, ' pipelined requests per connection'), d.maxPipelined),
    maxAppConnections: map.optional('maxAppConnections', (v) => readPositiveInteger(v, CAP_MAX.appConnections, ' connections to the app'), d.maxAppConnections),
    maxAppWaiting: map.optional('maxAppWaiting', readAppWaiting, d.maxAppWaiting),
  };
  const maxSessionAgeMs = map.optional('maxSessionAge', readDuration, undefined);
  for (const v of Object.values(limits)) if (v === undefined) return undefined;
  if (map.has('maxSessionAge') && maxSessionAgeMs === undefined) return undefined;
  return { ...(limits as InboundLimitsConfig), ...(maxSessionAgeMs !== undefined ? { maxSessionAgeMs } : {}) };
}

const HEADER_SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 * 1024 };

/** Bytes: a whole number, or `16KiB` / `1MiB`; between 1 KiB and 1 MiB, sane for a request head. */
function readHeaderListSize(value: YamlValue): number | undefined {
  const hint = 'write 16384, 16KiB or 1MiB';
  const text = value.kind === 'number' ? value.display() : value.string(`a size (${hint})`);
  if (text === undefined) return undefined;
  const match = /^(\d+)\s*(B|KiB|MiB)?$/.exec(text);
  if (!match) return value.report(`${JSON.stringify(text)} is not a size (${hint})`);
  const bytes = Number(match[1]) * (HEADER_SIZE_UNITS[match[2] ?? ''] as number);
  if (bytes < 1024 || bytes > 1024 * 1024) return value.report(`${JSON.stringify(text)} must be between 1KiB and 1MiB`);
  return bytes;
}

/** A size (`64MiB`, `1GiB`, bytes) from 64 KiB to 4 GiB. */
function readBufferedPerCaller(value: YamlValue): number | undefined {
  const bytes = readSize(value, BUFFERED_MAX, '4GiB', '64KiB');
  if (bytes === undefined) return undefined;
  if (bytes < BUFFERED_MIN) return value.report(`${value.display()} is too small: at least 64KiB (one stream's receive window), at most 4GiB`);
  return bytes;
}

/** A whole number from 0 (no request waits: 503 at once) to 1,000,000. */
function readAppWaiting(value: YamlValue): number | undefined {
  const n = value.number('a whole number');
  if (n === undefined) return undefined;
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP_MAX.appWaiting) return value.report(`${value.display()} must be a whole number from 0 to ${CAP_MAX.appWaiting}`);
  return n;
}

// What the inbound side (inbound.ts) offers the composition root and is given by it: the
// Inbound interface (listen, drain, close, the live setters a reload calls, what is in flight),
// its options, and the limits the config sets and tests tune. Types only; index.ts exports them.

import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import type { Http1AppClient } from '../config/http1-config.js';
import type { AuthorizeRule, InboundConfig, InboundRateLimit } from '../config/inbound-config.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { SchemaGuard } from '../schema/guard.js';
import type { InboundTimeoutsConfig } from './timeouts.js';

export interface InboundLimits {
  /** Request head size limit in bytes (HTTP/1.1 → 431; HTTP/2 → SETTINGS_MAX_HEADER_LIST_SIZE). Default: config inbound.limits.maxHeaderListSize (16 KiB). */
  readonly maxHeaderBytes?: number;
  /** Concurrent streams per HTTP/2 connection. Default: config inbound.limits.maxConcurrentStreams (250). */
  readonly maxConcurrentStreams?: number;
  /** Streams an HTTP/2 caller may reset per 10 s (while resets outnumber completed streams) before GOAWAY. Default: config inbound.limits.maxResetsPer10s (200). */
  readonly maxResetsPer10s?: number;
  /** Age at which an HTTP/2 session gets GOAWAY (±10%; streams in flight finish). Default: config inbound.limits.maxSessionAge (10 min). */
  readonly maxSessionAgeMs?: number;
  /**
   * meshcar codec: request body bytes all HTTP/2 connections of one caller identity may hold
   * at once, waiting for the app to read them (beyond: the stream that would exceed it is
   * reset, ENHANCE_YOUR_CALM). Default: config inbound.limits.maxBufferedPerCaller (64 MiB).
   */
  readonly maxBufferedPerCaller?: number;
  /** TLS handshakes in progress from one remote address; more are closed as they are accepted. Default: config inbound.limits.maxHandshakesPerAddress (256). */
  readonly maxHandshakesPerAddress?: number;
  /** TLS handshakes in progress on the listener; at the cap the oldest is closed for a new one. Default: config inbound.limits.maxHandshakes (1024). */
  readonly maxHandshakes?: number;
  /** Verified connections open at once per caller SPIFFE ID (HTTP/2 and HTTP/1.1); more are closed before a request is read. Default: config inbound.limits.maxConnectionsPerCaller (1024). */
  readonly maxConnectionsPerCaller?: number;
  /** HTTP/1.1 requests in flight on one caller connection (pipelined); beyond, the connection is closed. Default: config inbound.limits.maxPipelined (32). */
  readonly maxPipelined?: number;
  /** http2.codec node: nothing read from a caller's session for this long, it is sent a PING. Default 30 s. */
  readonly sessionProbeIdleMs?: number;
  /** http2.codec node: time a caller has to answer that PING before its connection is cut. Default 10 s. */
  readonly sessionProbeTimeoutMs?: number;
  /** Time to complete the TLS handshake. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Time to receive a complete HTTP/1.1 request head. Default 20 s. */
  readonly headersTimeoutMs?: number;
  /** Idle time between HTTP/1.1 keep-alive requests. Default 60 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Sockets to an HTTP/1.1 app. Default: config inbound.limits.maxAppConnections (256). */
  readonly maxAppSockets?: number;
  /** h2c app: how long a session has to answer a PING after one of its requests timed out, before it is dropped. Default 5 s. */
  readonly appPingTimeoutMs?: number;
  /** h2c app: how long a new session has for the app's first SETTINGS before it is dropped, its requests answered 503. Default 10 s. */
  readonly appFirstSettingsMs?: number;
  /** h2c app: how long a stream limit learned from the app's refusals holds before its announced limit is tried again. Default 60 s. */
  readonly appLearnedLimitMs?: number;
  /** h2c app: streams a new session carries before the app's SETTINGS say its limit. Default 1. */
  readonly appColdStreams?: number;
  /** Requests that may wait for the app: a connection to an HTTP/1.1 app, a stream slot on an h2c app's sessions. Default: config inbound.limits.maxAppWaiting (1000). */
  readonly appMaxWaiting?: number;
}

export interface InboundOptions {
  readonly config: InboundConfig;
  readonly identity: WorkloadIdentity;
  readonly trustDomain: string;
  /** Our own SPIFFE ID, for x-forwarded-client-cert `By=`. Default: the identity's. */
  readonly ownSpiffeId?: string;
  readonly logger: Logger;
  readonly observer?: TrafficObserver;
  readonly limits?: InboundLimits;
  /** HTTP/2 from callers: meshcar's own codec in src/h2 (`meshcar`, default: DEFAULT_HTTP2) or Node's core http2 server (`node`). */
  readonly codec?: 'meshcar' | 'node';
  /** HTTP/1.1 toward an http:// app: meshcar's own pool (default) or undici's (config http1.appClient). */
  readonly appClient?: Http1AppClient;
  /** The OpenAPI spec requests are held against (inbound.openapi), loaded by the caller. */
  readonly schema?: SchemaGuard;
}

export interface Inbound {
  /** Binds the listener (port 0: any free port) and resolves with the bound address. */
  listen(): Promise<HostPort>;
  /**
   * Stops accepting, lets requests in flight finish (HTTP/2: GOAWAY; HTTP/1.1: `Connection:
   * close` on the remaining responses) for up to `timeoutMs`, then destroys what is left.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Stops at once: the listener, every connection, the pools toward the app. */
  close(): Promise<void>;
  /** Replaces the authorization rules (undefined: any identity of the trust domain). */
  setAuthorization(rules: readonly AuthorizeRule[] | undefined): void;
  /** Replaces the rate limits (undefined: none); the buckets start full. */
  setRateLimit(rateLimit: InboundRateLimit | undefined): void;
  /**
   * Replaces the timeouts (response head, idle, per-route) for the requests that arrive from
   * now on; requests in flight keep theirs. Throws, changing nothing, on a non-positive value.
   */
  setTimeouts(config: InboundTimeoutsConfig): void;
  /** Replaces the OpenAPI spec and mode (undefined: no checks) for the requests that arrive from now on. */
  setSchema(guard: SchemaGuard | undefined): void;
  readonly address: HostPort | undefined;
  /** Requests (and WebSocket tunnels) in flight. */
  readonly inFlight: number;
  /** Verified connections open. */
  readonly connections: number;
  readonly draining: boolean;
}

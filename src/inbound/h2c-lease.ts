// What the h2c pool (h2c-pool.ts) keeps per cleartext HTTP/2 session to the app (a Lease:
// its streams, what the app's SETTINGS, refusals and GOAWAYs taught), the stream limit the app
// itself sets on one, and the options the pool is made with (inbound limits, inbound.ts).

import type { ClientHttp2Session } from 'node:http2';

export interface Lease {
  readonly session: ClientHttp2Session;
  /** Streams open on the session through this pool. */
  active: number;
  /** The app's SETTINGS arrived: its stream limit is known. */
  settled: boolean;
  /** Streams the app took at most when it refused one within its announced limit (Infinity: none refused since its last SETTINGS). */
  learned: number;
  /** A stream was refused within the limit: no new stream until a PING is answered. */
  suspect: boolean;
  /** The app sent GOAWAY: its refusals are its own, not a dead session's. */
  goaway: boolean;
  /** The lowest last stream id of the app's GOAWAYs: a stream above it was never processed (h2c-replay.ts). */
  goawayLastStreamId?: number;
  /** A PING is out to see whether the session still lives. */
  probing: boolean;
  /** Out of the pool: no new stream goes there; it closes when its last stream is done. */
  retired: boolean;
  /** Destroyed by the pool itself (a PING unanswered): its streams' requests are not sent again (the app, stalled, may be working on them). */
  discarded: boolean;
}

export interface H2cPoolOptions {
  readonly maxSessions?: number;
  /** Streams per session before another is opened, even if the app allows more. */
  readonly streamsPerSession?: number;
  /** Streams a session carries before the app's SETTINGS say its limit (default 1: SETTINGS come first, within a round trip). */
  readonly coldStreams?: number;
  /** Requests that may wait for a stream slot (default 1000); more are answered 503 at once. */
  readonly maxWaiting?: number;
  /** How long a suspect session has to answer a PING (default 5 s). */
  readonly probeMs?: number;
  /** How long a new session has for the app's first SETTINGS before it is dropped (h2c-first-settings.ts; default 10 s). */
  readonly firstSettingsMs?: number;
  /** How long a stream limit learned from refusals holds (default 60 s). */
  readonly learnedMs?: number;
}

/** The app's own limit on this session: its SETTINGS, and what a refusal taught. */
export function appLimitOf(lease: Lease): number {
  // before the app's SETTINGS arrive remoteSettings holds the protocol defaults (unlimited)
  const remote = lease.session.remoteSettings?.maxConcurrentStreams ?? Infinity;
  return Math.min(remote, lease.learned);
}

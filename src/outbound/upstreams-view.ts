// GET /upstreams (the admin view, wired in src/sidecar.ts): what the outbound knows of each
// upstream now, read from the pools when asked and never kept per request. Per upstream: its
// endpoints as the config writes them, every address it reaches now (IP endpoints as written,
// what host names resolved to) with its state (ok; down: a connect failure's backoff, until
// when; ejected: an outlier, until when), the sessions open to it and the streams on them, and
// the last failed lookup of its names. Metrics say how many addresses are known or ejected;
// this says which. The deadlines are kept on the running time (performance.now(): a wall clock
// stepped back must not stretch them) and shown as wall times, the time left added to Date.now().

import { performance } from 'node:perf_hooks';
import { formatHostPort } from '../config/address.js';
import type { UpstreamEndpoint } from './endpoints.js';
import type { UpstreamPool } from './upstream-pool.js';

export interface UpstreamAddressView {
  /** host:port as the endpoint label in logs and metrics (IPv6 in brackets). */
  readonly address: string;
  readonly state: 'ok' | 'down' | 'ejected';
  /** While a connect failure's backoff lasts: when it ends (ISO time). */
  readonly downUntil?: string;
  /** While ejected as an outlier: when it is re-admitted on probation (ISO time). */
  readonly ejectedUntil?: string;
  /** Failures in a row (outlier detection counts them toward an ejection). */
  readonly failures: number;
  /** Present (true) while a session's probe PING is out: new requests go to other addresses if they can. */
  readonly probing?: true;
  /** HTTP/2 sessions open to this address. */
  readonly sessions: number;
  /** Requests in flight on them. */
  readonly streams: number;
}

export interface UpstreamView {
  readonly name: string;
  /** The configured endpoints as written: `host:port`, `[v6]:port` or `dns:NAME:PORT`. */
  readonly endpoints: readonly string[];
  readonly addresses: readonly UpstreamAddressView[];
  /** Present while requests wait out a retry's backoff or Retry-After: how many. */
  readonly retrying?: number;
  /** The last failed lookup of one of its names; `failingNow` false once that name resolves again. */
  readonly lastLookupFailure?: { readonly host: string; readonly message: string; readonly time: string; readonly failingNow: boolean };
}

/** Now on both clocks: `running` (performance.now()) for the deadlines, `wall` (Date.now()) for what is shown. */
interface Now {
  readonly running: number;
  readonly wall: number;
}

/** The pools now routing, as GET /upstreams shows them (pools a reload retired are left out). */
export function upstreamsView(pools: readonly UpstreamPool[], now: Now = { running: performance.now(), wall: Date.now() }): UpstreamView[] {
  return pools.map((pool) => {
    const failure = pool.endpoints.lookupFailure();
    return {
      name: pool.name,
      endpoints: pool.config.endpoints.map((e) => (e.kind === 'dns' ? `dns:${e.host}:${e.port}` : formatHostPort(e))),
      addresses: pool.endpoints.all().map((e) => addressView(pool, e, now)),
      ...(pool.retrying > 0 ? { retrying: pool.retrying } : {}),
      ...(failure ? { lastLookupFailure: { host: failure.host, message: failure.message, time: new Date(failure.at).toISOString(), failingNow: failure.failingNow } } : {}),
    };
  });
}

/** A running-time deadline as the wall time it falls at (ISO). */
function wallTime(deadline: number, now: Now): string {
  return new Date(now.wall + (deadline - now.running)).toISOString();
}

function addressView(pool: UpstreamPool, e: UpstreamEndpoint, now: Now): UpstreamAddressView {
  const down = e.downUntil > now.running;
  return {
    address: e.key,
    // an ejection outlasts a backoff and is what keeps the address out: it is the state shown
    state: e.ejected ? 'ejected' : down ? 'down' : 'ok',
    ...(down ? { downUntil: wallTime(e.downUntil, now) } : {}),
    ...(e.ejected ? { ejectedUntil: wallTime(e.ejectedUntil, now) } : {}),
    failures: e.failures,
    // a session's probe PING is out: no new request goes there while another endpoint can take it
    ...(e.probing > 0 ? { probing: true } : {}),
    sessions: pool.own ? pool.own.sessionsTo(e) : (pool.byEndpoint.get(e)?.length ?? 0),
    streams: e.outstanding,
  };
}

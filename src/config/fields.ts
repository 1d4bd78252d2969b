// Readers for the kinds of value both configs share (durations, addresses, paths, names, log
// levels). Each takes a YAML value, returns the typed value or undefined, and words the issue
// the same way wherever the kind appears.

import { resolve } from 'node:path';
import { trustDomainProblem, tryParseSpiffeId } from '../identity/spiffe-id.js';
import { type HostPort, parseHostPort, quotedUrl } from './address.js';
import { DAY_MS, formatDuration, parseDuration } from './duration.js';
import type { YamlValue } from './yaml-value.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `timeout` when not written, for the inbound side and for each upstream alike. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/**
 * An upstream's `connectTimeout` when not written: Envoy's connect_timeout default. The bound of
 * one dial (TCP, TLS, the peer's first SETTINGS), never longer than the upstream's `timeout`.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Below this even a loopback handshake on a busy host would time out: every dial would fail. */
export const MIN_CONNECT_TIMEOUT_MS = 10;
/**
 * A dial still unfinished after a minute will not finish (Linux gives up on an unanswered SYN
 * after about two); a request waits on one endpoint up to four connect timeouts
 * (pool-failover.ts), so a longer one only holds requests back.
 */
export const MAX_CONNECT_TIMEOUT_MS = 60_000;
/** WebSocket tunnels idle this long close, either side, when `tunnelIdleTimeout` is not written: Envoy's stream idle default. */
export const DEFAULT_TUNNEL_IDLE_TIMEOUT_MS = 3_600_000;

const DURATION_HINT = 'write 250ms, 2s, 5m, 24h or 7d';


/**
 * The longest duration a setting takes unless it says otherwise: 24 days. Node's timers hold at
 * most 2^31-1 ms (24.8 days) and fire after 1 ms beyond it (with a TimeoutOverflowWarning), so a
 * longer refresh, drain or timeout would run at once, or back to back.
 */
export const MAX_TIMER_DURATION_MS = 24 * DAY_MS;

/**
 * The longest lifetime a certificate setting takes (identity.ttl, the CA's maxTtl and issuer
 * lifetime): 10 years, the root's own lifetime, beyond which nothing it signs can live. These are
 * date offsets, never a timer's wait, so they may pass MAX_TIMER_DURATION_MS.
 */
export const MAX_LIFETIME_MS = 3650 * DAY_MS;

export interface DurationBounds {
  /** Default: anything longer than zero. */
  readonly minMs?: number;
  /** Default: MAX_TIMER_DURATION_MS. */
  readonly maxMs?: number;
}

/** A duration written as zero (`0s`, `0ms`, `0.0s`), not one that only rounds to it. */
const ZERO_DURATION = /^(?:0+(?:\.0+)?(?:ms|s|m|h|d))+$/;

/**
 * A positive duration in milliseconds; zero would mean "never" or "at once", neither of which a
 * setting wants. At most `maxMs` (24 days unless the key is a date offset: see MAX_TIMER_DURATION_MS).
 */
export function readDuration(value: YamlValue, bounds: DurationBounds = {}): number | undefined {
  if (value.kind === 'number') return value.report(`${value.display()} is not a duration: give a unit (${DURATION_HINT})`);
  const text = value.string(`a duration (${DURATION_HINT})`);
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) return value.report(`${JSON.stringify(text)} is not a duration (${DURATION_HINT})`);
  if (ms <= 0) return value.report(ZERO_DURATION.test(text) ? `${JSON.stringify(text)} must be longer than zero` : `${JSON.stringify(text)} is shorter than 1ms: durations count whole milliseconds`);
  const { minMs, maxMs = MAX_TIMER_DURATION_MS } = bounds;
  if (minMs !== undefined && ms < minMs) return value.report(`${JSON.stringify(text)} is too short: the least allowed is ${formatDuration(minMs)}`);
  if (ms > maxMs) {
    const why = maxMs === MAX_TIMER_DURATION_MS ? " (Node's timers cannot wait longer than 24.8 days)" : '';
    return value.report(`${JSON.stringify(text)} is too long: the most allowed is ${formatDuration(maxMs)}${why}`);
  }
  return ms;
}

/**
 * A response-head timeout (`timeout` of the inbound side, its routes and each upstream): a
 * duration as readDuration takes, or zero (`0`, `0s`) for none, as Envoy's 0s disables its
 * route timeout: long-lived streams and quiet watches, guarded by the idle timeout alone.
 */
export function readTimeout(value: YamlValue): number | undefined {
  if (value.kind === 'number' && value.number('a duration') === 0) return 0;
  if (value.kind === 'string') {
    const text = value.string('a duration');
    // only a zero as written: 0.4ms rounds to 0 ms, and must not read as "no timeout"
    if (text !== undefined && ZERO_DURATION.test(text)) return 0;
  }
  return readDuration(value);
}

/** host:port to listen on; port 0 lets the OS pick one, which tests rely on. */
export function readListenAddress(value: YamlValue): HostPort | undefined {
  // a port alone (listen: 8443) is read by YAML as a number: say what to write, as for "8443"
  if (value.kind === 'number') return value.report(`${value.display()} is not a host:port address: give a host before the port, e.g. 127.0.0.1:${value.display()}`);
  const text = value.string('host:port');
  if (text === undefined) return undefined;
  const address = parseHostPort(text, { allowPortZero: true });
  return typeof address === 'string' ? value.report(`${quotedUrl(text)} is not a host:port address: ${address}`) : address;
}

/** Linux's PATH_MAX, the terminating NUL included. */
const MAX_PATH_BYTES = 4096;

/** A file or directory path, made absolute against the working directory so later chdirs cannot move it. */
export function readPath(value: YamlValue): string | undefined {
  const text = value.string('a file path');
  if (text === undefined) return undefined;
  if (text.trim() === '') return value.report('the path is empty');
  if (text.includes('\0')) return value.report('the path holds a NUL character');
  // no file has such a path (Linux's PATH_MAX); the system's refusal would quote it whole, twice
  if (Buffer.byteLength(text) >= MAX_PATH_BYTES) return value.report(`the path is ${Buffer.byteLength(text)} bytes long; a path is at most ${MAX_PATH_BYTES - 1}`);
  // no shell reads a config: ~/svid was a folder named ~ under the working directory, which
  // identity.dir is made as at the first start (the workload's private key in it)
  const tilde = /^~[A-Za-z0-9._-]*(?:\/|$)/.exec(text);
  if (tilde) return value.report(`${JSON.stringify(text)} starts with ${tilde[0].replace(/\/$/, '')}, which only a shell expands: write the home folder out`);
  return resolve(process.cwd(), text);
}

export function readTrustDomain(value: YamlValue): string | undefined {
  const text = value.string('a trust domain name');
  if (text === undefined) return undefined;
  const problem = trustDomainProblem(text);
  if (problem !== undefined) return value.report(`${JSON.stringify(text)} is not a trust domain: ${problem}`);
  return text;
}

/**
 * A SPIFFE ID of this config's trust domain. With `allowWildcard`, a trailing `/*` matches
 * every ID under that path. `trustDomain` is undefined when the config's own is invalid
 * (already reported), and then only the syntax is checked.
 */
export function readSpiffeId(value: YamlValue, trustDomain: string | undefined, allowWildcard = false): string | undefined {
  const text = value.string('a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH)');
  if (text === undefined) return undefined;
  const quoted = JSON.stringify(text);
  const wildcard = allowWildcard && text.endsWith('/*');
  const exact = wildcard ? text.slice(0, -2) : text;
  if (exact.includes('*')) {
    return value.report(allowWildcard ? `${quoted}: * may only be a whole last segment, as in spiffe://${trustDomain ?? 'mesh.local'}/svc/*` : `${quoted} is not a SPIFFE ID: wildcards are not allowed here`);
  }
  const parsed = tryParseSpiffeId(exact);
  if (typeof parsed === 'string') return value.report(`${quoted} is not a SPIFFE ID: ${parsed}`);
  if (trustDomain !== undefined && parsed.trustDomain !== trustDomain) {
    return value.report(`${quoted} belongs to trust domain ${parsed.trustDomain}, but this config's trustDomain is ${trustDomain}`);
  }
  // a peer with that ID is refused (peer-identity.ts, X509-SVID §5.2): the rule or upstream could never match
  if (!wildcard && parsed.path === '') return value.report(`${quoted} is the trust domain's own ID, which names no workload (no SVID carries it); give a workload's ID, as spiffe://${parsed.trustDomain}/svc/NAME`);
  return text;
}

export function readLogLevel(value: YamlValue): LogLevel | undefined {
  const text = value.string(`a log level (${LOG_LEVELS.join(', ')})`);
  if (text === undefined) return undefined;
  const level = LOG_LEVELS.find((l) => l === text);
  return level ?? value.report(`${JSON.stringify(text)} is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

/** A whole number from 1 to `max` (default: any safe integer); `why` says where a smaller max comes from. */
export function readPositiveInteger(value: YamlValue, max = Number.MAX_SAFE_INTEGER, why = ''): number | undefined {
  const n = value.number('a whole number');
  if (n === undefined) return undefined;
  if (!Number.isSafeInteger(n) || n < 1) return value.report(`${value.display()} must be a whole number of at least 1`);
  if (n > max) return value.report(`${value.display()} is too large: allowed 1 to ${max}${why}`);
  return n;
}

/** The largest rate a limit may name, per second; its burst may be ten seconds of it. */
export const MAX_RATE_PER_SECOND = 1_000_000;
export const MAX_BURST = 10 * MAX_RATE_PER_SECOND;

const RATE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600 };
const RATE_HINT = 'write 20/s, 100/m or 1000/h';

/** `20/s`, `100/m`, `1000/h`: requests per unit of time, as a rate per second. */
export function readRate(value: YamlValue): number | undefined {
  if (value.kind === 'number') return value.report(`${value.display()} is not a rate: give a unit (${RATE_HINT})`);
  const text = value.string(`a rate (${RATE_HINT})`);
  if (text === undefined) return undefined;
  const match = /^(\d+)\/([smh])$/.exec(text);
  if (!match || Number(match[1]) < 1) return value.report(`${JSON.stringify(text)} is not a rate (${RATE_HINT})`);
  const perSecond = Number(match[1]) / (RATE_UNITS[match[2] as string] as number);
  // far beyond what one sidecar carries: a limit that never bites would read as one that does
  if (perSecond > MAX_RATE_PER_SECOND) return value.report(`${JSON.stringify(text)} is too large: at most ${MAX_RATE_PER_SECOND}/s (leave the limit out for none)`);
  return perSecond;
}

// The sidecar config's traffic sections: inbound (listener, app, authorization rules) and
// outbound (listener, upstreams). Kept apart from the top level because inbound and outbound
// are separate stacks and each reads only its own slice.

import { type AppAddress, type Endpoint, type HostPort, parseAppUrl, parseEndpoint } from './address.js';
import { readDuration, readListenAddress, readPositiveInteger, readRate, readSpiffeId } from './fields.js';
import { type OpenApiConfig, readOpenApi, readSize } from './openapi-config.js';
import type { YamlValue } from './yaml-source.js';

export interface AuthorizeRule {
  /** Exact SPIFFE IDs, or prefixes ending in `/*` that match every ID below them. */
  readonly from: readonly string[];
  /** Upper-case HTTP methods; undefined allows any. */
  readonly methods: readonly string[] | undefined;
  /** Exact paths, or prefixes ending in `*`; undefined allows any. */
  readonly paths: readonly string[] | undefined;
}

export interface InboundConfig {
  readonly listen: HostPort;
  readonly app: AppAddress;
  readonly timeoutMs: number;
  /** undefined: any identity of the trust domain may call. A call must match one rule. */
  readonly authorize: readonly AuthorizeRule[] | undefined;
  /** Absent (or a side absent): no limit. */
  readonly rateLimit?: InboundRateLimit;
  /** HTTP/2 abuse limits; absent: DEFAULT_INBOUND_LIMITS. */
  readonly limits?: InboundLimitsConfig;
  /** No bytes either way on a request for this long: 504 (or a reset once the answer started). Absent: DEFAULT_INBOUND_IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number;
  /** Per-path timeouts, first match wins; a path matching none uses timeoutMs / idleTimeoutMs. */
  readonly routes?: readonly InboundRouteConfig[];
  /** Requests are held against this OpenAPI spec (src/schema); absent: not checked. */
  readonly openapi?: OpenApiConfig;
  /**
   * TLS session resumption for callers (session tickets); absent or false: every connection
   * is a full handshake, verified against the current bundle (see the listener).
   */
  readonly sessionResumption?: boolean;
}

export interface InboundRouteConfig {
  /** An exact path, or a prefix ending in `*`. */
  readonly path: string;
  /** Time until the app's response head; absent: the inbound timeout. */
  readonly timeoutMs?: number;
  /** Absent: the inbound idle timeout. */
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_INBOUND_IDLE_TIMEOUT_MS = 5 * 60_000;

export interface RateSpec {
  /** Tokens added per second (from `100/s`, `600/m` or `3600/h`). */
  readonly perSecond: number;
  readonly burst: number;
}

export interface InboundRateLimit {
  /** One bucket per caller SPIFFE ID. */
  readonly perIdentity: RateSpec | undefined;
  /** One bucket for every caller together. */
  readonly total: RateSpec | undefined;
}

export interface InboundLimitsConfig {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  readonly maxConcurrentStreams: number;
  /** Request head size in bytes (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1 431 beyond it). */
  readonly maxHeaderListSize: number;
  /** Streams an HTTP/2 caller may reset within 10 s (while resets outnumber completed streams) before GOAWAY. */
  readonly maxResetsPer10s: number;
  /** An HTTP/2 session older than this (±10%) gets GOAWAY and closes once its streams are done. Absent: DEFAULT_INBOUND_MAX_SESSION_AGE_MS. */
  readonly maxSessionAgeMs?: number;
}

export const DEFAULT_INBOUND_LIMITS: InboundLimitsConfig = Object.freeze({ maxConcurrentStreams: 250, maxHeaderListSize: 16 * 1024, maxResetsPer10s: 200 });
/** As the outbound side: a caller connects again (with a current certificate) at least this often. */
export const DEFAULT_INBOUND_MAX_SESSION_AGE_MS = 10 * 60_000;

export interface UpstreamConfig {
  /** Lower-case; the app's Host header (port left off) is matched against it case-insensitively. */
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly identity: string;
  readonly timeoutMs: number;
  /** Route templates such as `/charges/{id}`, for metric labels. */
  readonly routes: readonly string[];
  /** No bytes either way on a request's stream for this long: 504 (or a cut once the answer started). Default 5 min. */
  readonly idleTimeoutMs?: number;
  /** Safe retries; defaults when absent (see RETRY_DEFAULTS in src/outbound/retry.ts). */
  readonly retries?: RetryConfig;
  /** Peak-EWMA balancing; defaults when absent (see src/outbound/balancer.ts). */
  readonly balancer?: BalancerConfig;
  /** Caps on requests in flight and waiting for a stream; 503 circuit_open beyond. */
  readonly circuitBreaker?: CircuitBreakerConfig;
  /** Ejection of endpoints that keep failing. */
  readonly outlierDetection?: OutlierDetectionConfig;
  /** The app's calls to this upstream are held against this OpenAPI spec before they leave. */
  readonly openapi?: OpenApiConfig;
}

/** `balancer: {decay: 10s}`: how fast the latency estimate forgets. */
export interface BalancerConfig {
  readonly decayMs: number;
}

/** `circuitBreaker: {maxRequests: 1024, maxPending: 1024}`. */
export interface CircuitBreakerConfig {
  /** Requests in flight (or waiting for a stream) toward the upstream. Default 1024. */
  readonly maxRequests: number;
  /** Requests waiting for a session or a free stream. Default 1024. */
  readonly maxPending: number;
}

/** `outlierDetection: {consecutiveFailures: 5, baseEjection: 30s, maxEjection: 5m, maxEjectionPercent: 50}`. */
export interface OutlierDetectionConfig {
  /** Failures in a row (connect failure, reset, timeout, 503) that eject an endpoint; 0 never ejects. Default 5. */
  readonly consecutiveFailures: number;
  /** An ejection lasts this × the endpoint's ejections in a row. Default 30 s. */
  readonly baseEjectionMs: number;
  /** ...capped at this. Default 5 min. */
  readonly maxEjectionMs: number;
  /** At most this share of the endpoints is ejected at once. Default 50. */
  readonly maxEjectionPercent: number;
}

/** `retries:` of an upstream, flattened. */
export interface RetryConfig {
  /** Retries after the first try (0: never retry). Default 2. */
  readonly attempts: number;
  /** Retries at most this fraction of requests... Default 0.2. */
  readonly budgetRatio: number;
  /** ...plus this many per second. Default 10. */
  readonly budgetMinPerSecond: number;
  /** Exponential backoff with full jitter: base 25 ms, capped at 1 s. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Request bodies up to this size are kept for replay; larger ones are never retried. Default 64 KiB. */
  readonly bufferLimitBytes: number;
}

export interface OutboundConfig {
  readonly listen: HostPort;
  /** In the order written; names are unique. */
  readonly upstreams: readonly UpstreamConfig[];
  /** `dns:NAME:PORT` (and host-name) endpoints are looked up again this often. Absent: 5 s (the outbound side's default). */
  readonly dnsRefreshMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const UPSTREAM_NAME = /^[A-Za-z0-9.-]{1,253}$/;
const METHOD = /^[A-Z][A-Z_-]*$/;
const ROUTE_SEGMENT = /^(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[^{}]*)$/;

/** `trustDomain` is undefined when the config's own is invalid (already reported). */
export function readInbound(value: YamlValue, trustDomain: string | undefined): InboundConfig | undefined {
  const map = value.map(['listen', 'app', 'timeout', 'authorize', 'rateLimit', 'limits', 'idleTimeout', 'routes', 'openapi', 'sessionResumption']);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const app = map.required('app', readApp);
  const timeoutMs = map.optional('timeout', readDuration, DEFAULT_TIMEOUT_MS);
  const authorize = map.optional(
    'authorize',
    (v) => v.listOf((rule) => readRule(rule, trustDomain), 'list at least one rule, or leave authorize out to let any identity of the trust domain call'),
    undefined,
  );
  const rateLimit = map.optional('rateLimit', readInboundRateLimit, undefined);
  const limits = map.optional('limits', readInboundLimits, undefined);
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  const routes = map.optional('routes', (v) => v.listOf(readInboundRoute, 'list at least one route, or leave routes out'), undefined);
  const openapi = map.optional('openapi', readOpenApi, undefined);
  if (map.has('openapi') && !openapi) return undefined;
  const sessionResumption = map.optional('sessionResumption', (v) => v.boolean(), false);
  if (sessionResumption === undefined) return undefined;
  if (!listen || !app || timeoutMs === undefined || (map.has('authorize') && !authorize)) return undefined;
  if ((map.has('rateLimit') && !rateLimit) || (map.has('limits') && !limits)) return undefined;
  if ((map.has('idleTimeout') && idleTimeoutMs === undefined) || (map.has('routes') && !routes)) return undefined;
  // optional keys are left out of the result when absent (the defaults apply in the listener)
  return {
    listen,
    app,
    timeoutMs,
    authorize,
    ...(rateLimit ? { rateLimit } : {}),
    ...(limits ? { limits } : {}),
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(routes ? { routes } : {}),
    ...(openapi ? { openapi } : {}),
    ...(sessionResumption ? { sessionResumption } : {}),
  };
}

/** `{path: /reports/*, timeout: 60s, idleTimeout: 10m}`; both timeouts optional. */
function readInboundRoute(value: YamlValue): InboundRouteConfig | undefined {
  const map = value.map(['path', 'timeout', 'idleTimeout']);
  if (!map) return undefined;
  const path = map.required('path', readPathPattern);
  const timeoutMs = map.optional('timeout', readDuration, undefined);
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  if (path === undefined || (map.has('timeout') && timeoutMs === undefined) || (map.has('idleTimeout') && idleTimeoutMs === undefined)) return undefined;
  return { path, ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) };
}

function readInboundRateLimit(value: YamlValue): InboundRateLimit | undefined {
  const map = value.map(['perIdentity', 'total']);
  if (!map) return undefined;
  const perIdentity = map.optional('perIdentity', readRateSpec, undefined);
  const total = map.optional('total', readRateSpec, undefined);
  if ((map.has('perIdentity') && !perIdentity) || (map.has('total') && !total)) return undefined;
  return { perIdentity, total };
}

/** `{rate: 100/s, burst: 200}`; burst defaults to one second's worth of the rate (at least 1). */
function readRateSpec(value: YamlValue): RateSpec | undefined {
  const map = value.map(['rate', 'burst']);
  if (!map) return undefined;
  const perSecond = map.required('rate', readRate);
  const burst = map.optional('burst', readPositiveInteger, Math.max(1, Math.ceil(perSecond ?? 1)));
  return perSecond === undefined || burst === undefined ? undefined : { perSecond, burst };
}

function readInboundLimits(value: YamlValue): InboundLimitsConfig | undefined {
  const map = value.map(['maxConcurrentStreams', 'maxHeaderListSize', 'maxResetsPer10s', 'maxSessionAge']);
  if (!map) return undefined;
  const d = DEFAULT_INBOUND_LIMITS;
  const maxConcurrentStreams = map.optional('maxConcurrentStreams', readPositiveInteger, d.maxConcurrentStreams);
  const maxHeaderListSize = map.optional('maxHeaderListSize', readHeaderListSize, d.maxHeaderListSize);
  const maxResetsPer10s = map.optional('maxResetsPer10s', readPositiveInteger, d.maxResetsPer10s);
  const maxSessionAgeMs = map.optional('maxSessionAge', readDuration, undefined);
  if (maxConcurrentStreams === undefined || maxHeaderListSize === undefined || maxResetsPer10s === undefined) return undefined;
  if (map.has('maxSessionAge') && maxSessionAgeMs === undefined) return undefined;
  return { maxConcurrentStreams, maxHeaderListSize, maxResetsPer10s, ...(maxSessionAgeMs !== undefined ? { maxSessionAgeMs } : {}) };
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

function readApp(value: YamlValue): AppAddress | undefined {
  const text = value.string('an app URL (http://HOST:PORT or h2c://HOST:PORT)');
  if (text === undefined) return undefined;
  const app = parseAppUrl(text);
  return typeof app === 'string' ? value.report(`${JSON.stringify(text)} is not an app URL: ${app}`) : app;
}

function readRule(value: YamlValue, trustDomain: string | undefined): AuthorizeRule | undefined {
  const map = value.map(['from', 'methods', 'paths']);
  if (!map) return undefined;
  const from = map.required('from', (v) => v.listOf((id) => readSpiffeId(id, trustDomain, true), 'list at least one SPIFFE ID'));
  // An empty list would silently deny everything; leaving the key out is how to allow any.
  const methods = map.optional('methods', (v) => v.listOf(readMethod, 'list at least one method, or leave methods out to allow any'), undefined);
  const paths = map.optional('paths', (v) => v.listOf(readPathPattern, 'list at least one path, or leave paths out to allow any'), undefined);
  if (!from || (map.has('methods') && !methods) || (map.has('paths') && !paths)) return undefined;
  return { from, methods, paths };
}

function readMethod(value: YamlValue): string | undefined {
  const text = value.string('an HTTP method');
  if (text === undefined) return undefined;
  if (METHOD.test(text)) return text;
  if (METHOD.test(text.toUpperCase())) return value.report(`write HTTP methods in upper case: ${text.toUpperCase()}`);
  return value.report(`${JSON.stringify(text)} is not an HTTP method`);
}

function readPathPattern(value: YamlValue): string | undefined {
  const text = value.string('a path (/orders, or /orders/* for a prefix)');
  if (text === undefined) return undefined;
  const quoted = JSON.stringify(text);
  if (!text.startsWith('/')) return value.report(`${quoted} must start with /`);
  if (/[?#\s]/.test(text)) return value.report(`${quoted} may not hold a query, fragment or spaces`);
  if (text.slice(0, -1).includes('*')) return value.report(`${quoted}: * may only come last, as in /orders/*`);
  return text;
}

/** Shorter refreshes would put a lookup storm on the resolver for little gain. */
const MIN_DNS_REFRESH_MS = 100;

export function readOutbound(value: YamlValue, trustDomain: string | undefined): OutboundConfig | undefined {
  const map = value.map(['listen', 'upstreams', 'dnsRefresh']);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const upstreams = map.required('upstreams', (v) => readUpstreams(v, trustDomain));
  const dnsRefreshMs = map.optional('dnsRefresh', readDnsRefresh, undefined);
  if (!listen || !upstreams || (map.has('dnsRefresh') && dnsRefreshMs === undefined)) return undefined;
  return { listen, upstreams, ...(dnsRefreshMs !== undefined ? { dnsRefreshMs } : {}) };
}

function readDnsRefresh(value: YamlValue): number | undefined {
  const ms = readDuration(value);
  if (ms === undefined) return undefined;
  return ms < MIN_DNS_REFRESH_MS ? value.report(`${value.display()} is too short: re-resolve at most every ${MIN_DNS_REFRESH_MS}ms`) : ms;
}

function readUpstreams(value: YamlValue, trustDomain: string | undefined): UpstreamConfig[] | undefined {
  const map = value.map();
  if (!map) return undefined;
  const entries = map.entries();
  if (entries.length === 0) return value.report('name at least one upstream');
  const seen = new Map<string, string>();
  const upstreams: UpstreamConfig[] = [];
  let ok = true;
  for (const [key, entry] of entries) {
    const name = key.toLowerCase();
    const upstream = readUpstream(entry, name, trustDomain);
    if (!UPSTREAM_NAME.test(key)) {
      entry.report(`${JSON.stringify(key)} is not an upstream name: use letters, digits, dots and dashes (the host name the app sends)`);
      ok = false;
    } else if (seen.has(name)) {
      // The app's Host header is matched case-insensitively, so these would be one upstream.
      entry.report(`same upstream as ${seen.get(name)}: names are matched case-insensitively`);
      ok = false;
    }
    seen.set(name, key);
    if (upstream) upstreams.push(upstream);
    else ok = false;
  }
  return ok ? upstreams : undefined;
}

function readUpstream(value: YamlValue, name: string, trustDomain: string | undefined): UpstreamConfig | undefined {
  const map = value.map(['endpoints', 'identity', 'timeout', 'routes', 'idleTimeout', 'retries', 'balancer', 'circuitBreaker', 'outlierDetection', 'openapi']);
  if (!map) return undefined;
  const endpoints = map.required('endpoints', (v) => v.listOf(readEndpoint, 'list at least one endpoint (host:port or dns:NAME:PORT)'));
  const identity = map.required('identity', (v) => readSpiffeId(v, trustDomain));
  const timeoutMs = map.optional('timeout', readDuration, DEFAULT_TIMEOUT_MS);
  const routes = map.optional('routes', (v) => v.listOf(readRoute), []);
  // left out when not written: the outbound side applies the defaults (idle 5m, retries as below)
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  const retries = map.optional('retries', readRetries, undefined);
  const balancer = map.optional('balancer', readBalancer, undefined);
  const circuitBreaker = map.optional('circuitBreaker', readCircuitBreaker, undefined);
  const outlierDetection = map.optional('outlierDetection', readOutlierDetection, undefined);
  const openapi = map.optional('openapi', readOpenApi, undefined);
  if (map.has('openapi') && !openapi) return undefined;
  if (!endpoints || !identity || timeoutMs === undefined || !routes) return undefined;
  if ((map.has('idleTimeout') && idleTimeoutMs === undefined) || (map.has('retries') && !retries)) return undefined;
  if ((map.has('balancer') && !balancer) || (map.has('circuitBreaker') && !circuitBreaker) || (map.has('outlierDetection') && !outlierDetection)) return undefined;
  return {
    name,
    endpoints,
    identity,
    timeoutMs,
    routes,
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(retries ? { retries } : {}),
    ...(balancer ? { balancer } : {}),
    ...(circuitBreaker ? { circuitBreaker } : {}),
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(openapi ? { openapi } : {}),
  };
}

// the same values as BALANCER_DEFAULTS etc. in src/outbound/balancer.ts (config does not import the data plane)
export const DEFAULT_DECAY_MS = 10_000;
export const DEFAULT_CIRCUIT: CircuitBreakerConfig = Object.freeze({ maxRequests: 1024, maxPending: 1024 });
export const DEFAULT_OUTLIER: OutlierDetectionConfig = Object.freeze({ consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 5 * 60_000, maxEjectionPercent: 50 });

/** `balancer: {decay: 10s}`. */
function readBalancer(value: YamlValue): BalancerConfig | undefined {
  const map = value.map(['decay']);
  if (!map) return undefined;
  const decayMs = map.optional('decay', readDuration, DEFAULT_DECAY_MS);
  if (decayMs === undefined) return undefined;
  if (decayMs <= 0) return value.report('balancer.decay must be longer than 0');
  return { decayMs };
}

/** `circuitBreaker: {maxRequests: 1024, maxPending: 1024}`; each key optional. */
function readCircuitBreaker(value: YamlValue): CircuitBreakerConfig | undefined {
  const map = value.map(['maxRequests', 'maxPending']);
  if (!map) return undefined;
  const maxRequests = map.optional('maxRequests', readPositiveInteger, DEFAULT_CIRCUIT.maxRequests);
  const maxPending = map.optional('maxPending', readPositiveInteger, DEFAULT_CIRCUIT.maxPending);
  return maxRequests === undefined || maxPending === undefined ? undefined : { maxRequests, maxPending };
}

/** `outlierDetection: {consecutiveFailures: 5, baseEjection: 30s, maxEjection: 5m, maxEjectionPercent: 50}`; each key optional. */
function readOutlierDetection(value: YamlValue): OutlierDetectionConfig | undefined {
  const map = value.map(['consecutiveFailures', 'baseEjection', 'maxEjection', 'maxEjectionPercent']);
  if (!map) return undefined;
  const d = DEFAULT_OUTLIER;
  const consecutiveFailures = map.optional('consecutiveFailures', (v) => readCount(v, 1000), d.consecutiveFailures);
  const baseEjectionMs = map.optional('baseEjection', readDuration, d.baseEjectionMs);
  const maxEjectionMs = map.optional('maxEjection', readDuration, Math.max(d.maxEjectionMs, baseEjectionMs ?? 0));
  const maxEjectionPercent = map.optional('maxEjectionPercent', (v) => readCount(v, 100), d.maxEjectionPercent);
  if (consecutiveFailures === undefined || baseEjectionMs === undefined || maxEjectionMs === undefined || maxEjectionPercent === undefined) return undefined;
  if (maxEjectionMs < baseEjectionMs) return value.report(`maxEjection (${maxEjectionMs} ms) must not be shorter than baseEjection (${baseEjectionMs} ms)`);
  return { consecutiveFailures, baseEjectionMs, maxEjectionMs, maxEjectionPercent };
}

export const DEFAULT_RETRIES: RetryConfig = Object.freeze({ attempts: 2, budgetRatio: 0.2, budgetMinPerSecond: 10, backoffBaseMs: 25, backoffMaxMs: 1000, bufferLimitBytes: 64 * 1024 });

/** `retries: {attempts: 2, budget: {ratio: 0.2, minPerSecond: 10}, backoff: {base: 25ms, max: 1s}, bufferLimit: 64KiB}`; every key optional. */
function readRetries(value: YamlValue): RetryConfig | undefined {
  const map = value.map(['attempts', 'budget', 'backoff', 'bufferLimit']);
  if (!map) return undefined;
  const d = DEFAULT_RETRIES;
  const attempts = map.optional('attempts', (v) => readCount(v, 10), d.attempts);
  const budget = map.optional('budget', readRetryBudget, { ratio: d.budgetRatio, minPerSecond: d.budgetMinPerSecond });
  const backoff = map.optional('backoff', readBackoff, { base: d.backoffBaseMs, max: d.backoffMaxMs });
  const bufferLimitBytes = map.optional('bufferLimit', readSize, d.bufferLimitBytes);
  if (attempts === undefined || !budget || !backoff || bufferLimitBytes === undefined) return undefined;
  if (backoff.max < backoff.base) return value.report(`backoff.max (${backoff.max} ms) must not be shorter than backoff.base (${backoff.base} ms)`);
  return { attempts, budgetRatio: budget.ratio, budgetMinPerSecond: budget.minPerSecond, backoffBaseMs: backoff.base, backoffMaxMs: backoff.max, bufferLimitBytes };
}

function readRetryBudget(value: YamlValue): { ratio: number; minPerSecond: number } | undefined {
  const map = value.map(['ratio', 'minPerSecond']);
  if (!map) return undefined;
  const ratio = map.optional('ratio', readRatio, DEFAULT_RETRIES.budgetRatio);
  const minPerSecond = map.optional('minPerSecond', (v) => readCount(v, 100_000), DEFAULT_RETRIES.budgetMinPerSecond);
  return ratio === undefined || minPerSecond === undefined ? undefined : { ratio, minPerSecond };
}

function readBackoff(value: YamlValue): { base: number; max: number } | undefined {
  const map = value.map(['base', 'max']);
  if (!map) return undefined;
  const base = map.optional('base', readDuration, DEFAULT_RETRIES.backoffBaseMs);
  const max = map.optional('max', readDuration, DEFAULT_RETRIES.backoffMaxMs);
  return base === undefined || max === undefined ? undefined : { base, max };
}

function readCount(value: YamlValue, max: number): number | undefined {
  const n = value.number('a whole number');
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 0 || n > max) return value.report(`${value.display()} must be a whole number from 0 to ${max}`);
  return n;
}

function readRatio(value: YamlValue): number | undefined {
  const n = value.number('a fraction such as 0.2');
  if (n === undefined) return undefined;
  if (!(n >= 0 && n <= 1)) return value.report(`${value.display()} must be between 0 and 1`);
  return n;
}

function readEndpoint(value: YamlValue): Endpoint | undefined {
  const text = value.string('an endpoint (host:port or dns:NAME:PORT)');
  if (text === undefined) return undefined;
  const endpoint = parseEndpoint(text);
  return typeof endpoint === 'string' ? value.report(`${JSON.stringify(text)} is not an endpoint: ${endpoint}`) : endpoint;
}

/** `/charges/{id}`: placeholders are whole segments, so a template matches segment by segment. */
function readRoute(value: YamlValue): string | undefined {
  const text = value.string('a route template such as /charges/{id}');
  if (text === undefined) return undefined;
  const quoted = JSON.stringify(text);
  if (!text.startsWith('/')) return value.report(`${quoted} must start with /`);
  if (/[?#\s]/.test(text)) return value.report(`${quoted} may not hold a query, fragment or spaces`);
  if (!text.split('/').every((segment) => ROUTE_SEGMENT.test(segment))) {
    return value.report(`${quoted}: a placeholder must be a whole segment such as {id}`);
  }
  return text;
}

// The sidecar config's `inbound` section: listener, app, timeouts and per-path routes,
// authorization rules, rate limits, HTTP/2 abuse limits and the OpenAPI guard. Kept apart from
// the top level and from `outbound` because the two are separate stacks and each reads only its
// own slice: src/inbound imports this file, never outbound-config.ts.

import { type AppAddress, formatHostPort, type HostPort, parseAppUrl, quotedUrl, reachesListener } from './address.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, readDuration, readListenAddress, readPositiveInteger, readTimeout, readRate, MAX_BURST, readSpiffeId } from './fields.js';
import { type OpenApiConfig, readOpenApi } from './openapi-config.js';
import type { YamlValue } from './yaml-value.js';
import { readPathPattern } from './path-pattern.js';
import { type InboundLimitsConfig, readInboundLimits } from './inbound-limits-config.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const INBOUND_KEYS: readonly string[] = ['listen', 'app', 'timeout', 'authorize', 'rateLimit', 'limits', 'idleTimeout', 'routes', 'tunnelIdleTimeout', 'openapi', 'sessionResumption'];
export const INBOUND_ROUTE_KEYS: readonly string[] = ['path', 'timeout', 'idleTimeout'];
export const INBOUND_RATE_LIMIT_KEYS: readonly string[] = ['perIdentity', 'total'];
export const RATE_SPEC_KEYS: readonly string[] = ['rate', 'burst'];
export const AUTHORIZE_RULE_KEYS: readonly string[] = ['from', 'methods', 'paths'];

export { DEFAULT_INBOUND_LIMITS, DEFAULT_INBOUND_MAX_SESSION_AGE_MS, MAX_CONCURRENT_STREAMS, type InboundLimitsConfig } from './inbound-limits-config.js';

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
  /** The wait for the response head, from the end of the request body; 0: none (the idle timeout alone). */
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
  /** A WebSocket tunnel with no bytes either way for this long closes. Absent: DEFAULT_TUNNEL_IDLE_TIMEOUT_MS (fields.ts). */
  readonly tunnelIdleTimeoutMs?: number;
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
  /** Time until the app's response head, from the end of the request body (0: none); absent: the inbound timeout. */
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

const METHOD = /^[A-Z][A-Z_-]*$/;

/** `trustDomain` is undefined when the config's own is invalid (already reported). */
export function readInbound(value: YamlValue, trustDomain: string | undefined): InboundConfig | undefined {
  const map = value.map(INBOUND_KEYS);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const app = map.required('app', readApp);
  const timeoutMs = map.optional('timeout', readTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const authorize = map.optional(
    'authorize',
    (v) => v.listOf((rule) => readRule(rule, trustDomain), 'list at least one rule, or leave authorize out to let any identity of the trust domain call'),
    undefined,
  );
  const rateLimit = map.optional('rateLimit', readInboundRateLimit, undefined);
  const limits = map.optional('limits', readInboundLimits, undefined);
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  const routes = map.optional('routes', (v) => v.listOf(readInboundRoute, 'list at least one route, or leave routes out'), undefined);
  const tunnelIdleTimeoutMs = map.optional('tunnelIdleTimeout', readDuration, undefined);
  const openapi = map.optional('openapi', readOpenApi, undefined);
  if (map.has('openapi') && !openapi) return undefined;
  const sessionResumption = map.optional('sessionResumption', (v) => v.boolean(), false);
  if (sessionResumption === undefined) return undefined;
  if (!listen || !app || timeoutMs === undefined || (map.has('authorize') && !authorize)) return undefined;
  // every request would come back in, again and again, until the sockets run out
  if (reachesListener(listen, app)) return map.get('app').report(`${formatHostPort(app)} is inbound.listen itself: the sidecar would send each request back to itself; give the app's own address`);
  if ((map.has('rateLimit') && !rateLimit) || (map.has('limits') && !limits)) return undefined;
  if ((map.has('idleTimeout') && idleTimeoutMs === undefined) || (map.has('routes') && !routes)) return undefined;
  if (map.has('tunnelIdleTimeout') && tunnelIdleTimeoutMs === undefined) return undefined;
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
    ...(tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs } : {}),
    ...(openapi ? { openapi } : {}),
    ...(sessionResumption ? { sessionResumption } : {}),
  };
}

/** `{path: /reports/*, timeout: 60s, idleTimeout: 10m}`; both timeouts optional. */
function readInboundRoute(value: YamlValue): InboundRouteConfig | undefined {
  const map = value.map(INBOUND_ROUTE_KEYS);
  if (!map) return undefined;
  const path = map.required('path', readPathPattern);
  const timeoutMs = map.optional('timeout', readTimeout, undefined);
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  if (path === undefined || (map.has('timeout') && timeoutMs === undefined) || (map.has('idleTimeout') && idleTimeoutMs === undefined)) return undefined;
  return { path, ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) };
}

function readInboundRateLimit(value: YamlValue): InboundRateLimit | undefined {
  const map = value.map(INBOUND_RATE_LIMIT_KEYS);
  if (!map) return undefined;
  const perIdentity = map.optional('perIdentity', readRateSpec, undefined);
  const total = map.optional('total', readRateSpec, undefined);
  if ((map.has('perIdentity') && !perIdentity) || (map.has('total') && !total)) return undefined;
  return { perIdentity, total };
}

/** `{rate: 100/s, burst: 200}`; burst defaults to one second's worth of the rate (at least 1). */
function readRateSpec(value: YamlValue): RateSpec | undefined {
  const map = value.map(RATE_SPEC_KEYS);
  if (!map) return undefined;
  const perSecond = map.required('rate', readRate);
  const burst = map.optional('burst', (v) => readPositiveInteger(v, MAX_BURST, ' (ten seconds of the largest rate)'), Math.max(1, Math.ceil(perSecond ?? 1)));
  return perSecond === undefined || burst === undefined ? undefined : { perSecond, burst };
}

function readApp(value: YamlValue): AppAddress | undefined {
  const text = value.string('an app URL (http://HOST:PORT or h2c://HOST:PORT)');
  if (text === undefined) return undefined;
  const app = parseAppUrl(text);
  return typeof app === 'string' ? value.report(`${quotedUrl(text)} is not an app URL: ${app}`) : app;
}

function readRule(value: YamlValue, trustDomain: string | undefined): AuthorizeRule | undefined {
  const map = value.map(AUTHORIZE_RULE_KEYS);
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


// The sidecar config's `outbound` section: listener, DNS refresh, and the upstreams the app may
// call (name, endpoints, identity, timeouts, route templates). Kept apart from `inbound` because
// the two are separate stacks and each reads only its own slice. How calls to one upstream are
// balanced, retried and cut off is read in upstream-policy-config.ts.

import { type Endpoint, formatHostPort, type HostPort, parseEndpoint, quotedUrl, reachesListener } from './address.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, MAX_CONNECT_TIMEOUT_MS, MIN_CONNECT_TIMEOUT_MS, readDuration, readListenAddress, readSpiffeId, readTimeout } from './fields.js';
import { type OpenApiConfig, readOpenApi } from './openapi-config.js';
import {
  type BalancerConfig,
  type CircuitBreakerConfig,
  type OutlierDetectionConfig,
  readBalancer,
  readCircuitBreaker,
  readOutlierDetection,
  readRetries,
  type RetryConfig,
} from './upstream-policy-config.js';
import type { YamlValue } from './yaml-value.js';
import { UNKNOWN_PEER } from '../metrics/unknown-peer.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const OUTBOUND_KEYS: readonly string[] = ['listen', 'upstreams', 'dnsRefresh'];
export const UPSTREAM_KEYS: readonly string[] = ['endpoints', 'identity', 'timeout', 'connectTimeout', 'routes', 'idleTimeout', 'tunnelIdleTimeout', 'retries', 'balancer', 'circuitBreaker', 'outlierDetection', 'openapi'];

export interface UpstreamConfig {
  /** Lower-case; the app's Host header (port left off) is matched against it case-insensitively. */
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly identity: string;
  /** The wait for the response head, from the end of the request body; 0: none (the idle timeout alone). */
  readonly timeoutMs: number;
  /**
   * The bound of one dial to an endpoint (TCP, TLS, the peer's first SETTINGS), as Envoy's
   * connect_timeout; the dial's bound is the shorter of it and a non-zero `timeoutMs`.
   * Default 5 s (DEFAULT_CONNECT_TIMEOUT_MS, fields.ts).
   */
  readonly connectTimeoutMs?: number;
  /** Route templates such as `/charges/{id}`, for metric labels. */
  readonly routes: readonly string[];
  /** No bytes either way on a request's stream for this long: 504 (or a cut once the answer started). Default 5 min. */
  readonly idleTimeoutMs?: number;
  /**
   * A WebSocket (Upgrade) tunnel to this upstream on which no byte moved either way for this long
   * is closed. Default 1 h (DEFAULT_TUNNEL_IDLE_TIMEOUT_MS, fields.ts).
   */
  readonly tunnelIdleTimeoutMs?: number;
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

export interface OutboundConfig {
  readonly listen: HostPort;
  /** In the order written; names are unique. */
  readonly upstreams: readonly UpstreamConfig[];
  /** `dns:NAME:PORT` (and host-name) endpoints are looked up again this often. Absent: 5 s (the outbound side's default). */
  readonly dnsRefreshMs?: number;
}

const UPSTREAM_NAME = /^[A-Za-z0-9.-]{1,253}$/;
const ROUTE_SEGMENT = /^(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[^{}]*)$/;

/** Shorter refreshes would put a lookup storm on the resolver for little gain. */
const MIN_DNS_REFRESH_MS = 100;

export function readOutbound(value: YamlValue, trustDomain: string | undefined): OutboundConfig | undefined {
  const map = value.map(OUTBOUND_KEYS);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const upstreams = map.required('upstreams', (v) => readUpstreams(v, trustDomain, listen));
  const dnsRefreshMs = map.optional('dnsRefresh', readDnsRefresh, undefined);
  if (!listen || !upstreams || (map.has('dnsRefresh') && dnsRefreshMs === undefined)) return undefined;
  return { listen, upstreams, ...(dnsRefreshMs !== undefined ? { dnsRefreshMs } : {}) };
}

function readDnsRefresh(value: YamlValue): number | undefined {
  const ms = readDuration(value);
  if (ms === undefined) return undefined;
  return ms < MIN_DNS_REFRESH_MS ? value.report(`${value.display()} is too short: re-resolve at most every ${MIN_DNS_REFRESH_MS}ms`) : ms;
}

function readUpstreams(value: YamlValue, trustDomain: string | undefined, listen: HostPort | undefined): UpstreamConfig[] | undefined {
  const map = value.map();
  if (!map) return undefined;
  const entries = map.entries();
  if (entries.length === 0) return value.report('name at least one upstream');
  const seen = new Map<string, string>();
  const upstreams: UpstreamConfig[] = [];
  let ok = true;
  for (const [key, entry] of entries) {
    const name = key.toLowerCase();
    const upstream = readUpstream(entry, name, trustDomain, listen);
    if (!UPSTREAM_NAME.test(key)) {
      entry.report(`${JSON.stringify(key)} is not an upstream name: use letters, digits, dots and dashes (the host name the app sends)`);
      ok = false;
    } else if (name.replace(/\.+$/, '') === UNKNOWN_PEER) {
      // the metrics' and /endpoints' label for requests that name no upstream: its series mixed
      // the two (a review saw one /endpoints row of 200s and 404s); before the dot rule, whose
      // hint would name it
      entry.report(`"${key}" is not an upstream name here: it is the label meshcar's metrics give requests that name no upstream; name it otherwise (the app's Host is then that name)`);
      ok = false;
    } else if (key.endsWith('.')) {
      // the router reads the app's Host without its final dot: such a name answered only a Host
      // written exactly so, with no port
      entry.report(`${JSON.stringify(key)} is not an upstream name: no dot at its end (write ${JSON.stringify(key.replace(/\.+$/, ''))}; the app may still send it with one)`);
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

function readUpstream(value: YamlValue, name: string, trustDomain: string | undefined, listen: HostPort | undefined): UpstreamConfig | undefined {
  const map = value.map(UPSTREAM_KEYS);
  if (!map) return undefined;
  const endpoints = map.required('endpoints', (v) => v.listOf((e) => readEndpoint(e, listen), 'list at least one endpoint (host:port or dns:NAME:PORT)'));
  const identity = map.required('identity', (v) => readSpiffeId(v, trustDomain));
  const timeoutMs = map.optional('timeout', readTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const connectTimeoutMs = map.optional('connectTimeout', (v) => readDuration(v, { minMs: MIN_CONNECT_TIMEOUT_MS, maxMs: MAX_CONNECT_TIMEOUT_MS }), undefined);
  const routes = map.optional('routes', (v) => v.listOf(readRoute), []);
  // left out when not written: the outbound side applies the defaults (idle 5m, retries as below)
  const idleTimeoutMs = map.optional('idleTimeout', readDuration, undefined);
  const tunnelIdleTimeoutMs = map.optional('tunnelIdleTimeout', readDuration, undefined);
  const retries = map.optional('retries', readRetries, undefined);
  const balancer = map.optional('balancer', readBalancer, undefined);
  const circuitBreaker = map.optional('circuitBreaker', readCircuitBreaker, undefined);
  const outlierDetection = map.optional('outlierDetection', readOutlierDetection, undefined);
  const openapi = map.optional('openapi', readOpenApi, undefined);
  if (map.has('openapi') && !openapi) return undefined;
  if (!endpoints || !identity || timeoutMs === undefined || !routes) return undefined;
  if ((map.has('idleTimeout') && idleTimeoutMs === undefined) || (map.has('retries') && !retries)) return undefined;
  if ((map.has('tunnelIdleTimeout') && tunnelIdleTimeoutMs === undefined) || (map.has('connectTimeout') && connectTimeoutMs === undefined)) return undefined;
  if ((map.has('balancer') && !balancer) || (map.has('circuitBreaker') && !circuitBreaker) || (map.has('outlierDetection') && !outlierDetection)) return undefined;
  return {
    name,
    endpoints,
    identity,
    timeoutMs,
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    routes,
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs } : {}),
    ...(retries ? { retries } : {}),
    ...(balancer ? { balancer } : {}),
    ...(circuitBreaker ? { circuitBreaker } : {}),
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(openapi ? { openapi } : {}),
  };
}

/** `listen`: the outbound listener, which an endpoint must not be (undefined when it is invalid). */
function readEndpoint(value: YamlValue, listen: HostPort | undefined): Endpoint | undefined {
  const text = value.string('an endpoint (host:port or dns:NAME:PORT)');
  if (text === undefined) return undefined;
  const endpoint = parseEndpoint(text);
  if (typeof endpoint === 'string') return value.report(`${quotedUrl(text)} is not an endpoint: ${endpoint}`);
  // the app's plain-HTTP port, not a sidecar's mTLS one: each call would come back in as a new call
  if (listen && reachesListener(listen, endpoint)) return value.report(`${JSON.stringify(text)} is outbound.listen (${formatHostPort(listen)}) itself: an endpoint is another sidecar's inbound port`);
  return endpoint;
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

// The sidecar config's traffic sections: inbound (listener, app, authorization rules) and
// outbound (listener, upstreams). Kept apart from the top level because inbound and outbound
// are separate stacks and each reads only its own slice.

import { type AppAddress, type Endpoint, type HostPort, parseAppUrl, parseEndpoint } from './address.js';
import { readDuration, readListenAddress, readSpiffeId } from './fields.js';
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
}

export interface UpstreamConfig {
  /** Lower-case; the app's Host header (port left off) is matched against it case-insensitively. */
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  /** The SPIFFE ID the upstream's certificate must carry. */
  readonly identity: string;
  readonly timeoutMs: number;
  /** Route templates such as `/charges/{id}`, for metric labels. */
  readonly routes: readonly string[];
}

export interface OutboundConfig {
  readonly listen: HostPort;
  /** In the order written; names are unique. */
  readonly upstreams: readonly UpstreamConfig[];
}

const DEFAULT_TIMEOUT_MS = 15_000;
const UPSTREAM_NAME = /^[A-Za-z0-9.-]{1,253}$/;
const METHOD = /^[A-Z][A-Z_-]*$/;
const ROUTE_SEGMENT = /^(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[^{}]*)$/;

/** `trustDomain` is undefined when the config's own is invalid (already reported). */
export function readInbound(value: YamlValue, trustDomain: string | undefined): InboundConfig | undefined {
  const map = value.map(['listen', 'app', 'timeout', 'authorize']);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const app = map.required('app', readApp);
  const timeoutMs = map.optional('timeout', readDuration, DEFAULT_TIMEOUT_MS);
  const authorize = map.optional(
    'authorize',
    (v) => v.listOf((rule) => readRule(rule, trustDomain), 'list at least one rule, or leave authorize out to let any identity of the trust domain call'),
    undefined,
  );
  if (!listen || !app || timeoutMs === undefined || (map.has('authorize') && !authorize)) return undefined;
  return { listen, app, timeoutMs, authorize };
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

export function readOutbound(value: YamlValue, trustDomain: string | undefined): OutboundConfig | undefined {
  const map = value.map(['listen', 'upstreams']);
  if (!map) return undefined;
  const listen = map.required('listen', readListenAddress);
  const upstreams = map.required('upstreams', (v) => readUpstreams(v, trustDomain));
  return listen && upstreams ? { listen, upstreams } : undefined;
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
  const map = value.map(['endpoints', 'identity', 'timeout', 'routes']);
  if (!map) return undefined;
  const endpoints = map.required('endpoints', (v) => v.listOf(readEndpoint, 'list at least one endpoint (host:port or dns:NAME:PORT)'));
  const identity = map.required('identity', (v) => readSpiffeId(v, trustDomain));
  const timeoutMs = map.optional('timeout', readDuration, DEFAULT_TIMEOUT_MS);
  const routes = map.optional('routes', (v) => v.listOf(readRoute), []);
  if (!endpoints || !identity || timeoutMs === undefined || !routes) return undefined;
  return { name, endpoints, identity, timeoutMs, routes };
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

// The sidecar's config: YAML file → checked, typed, frozen SidecarConfig (contract: DESIGN.md,
// "Sidecar configuration"). The top level and identity live here; the traffic sections
// (inbound, outbound) are read in traffic-config.ts.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { isValidServiceName, serviceSpiffeId } from '../identity/spiffe-id.js';
import { formatHostPort, type HostPort, isHostname, parseHostPort, parseHttpsUrl } from './address.js';
import { deepFreeze } from './freeze.js';
import { type LogLevel, readDuration, readListenAddress, readLogLevel, readPath, readTrustDomain } from './fields.js';
import { DEFAULT_HTTP2, type Http2Config, readHttp2 } from './http2-config.js';
import { ConfigError, sortIssues } from './issues.js';
import { type InboundConfig, type OutboundConfig, readInbound, readOutbound, type UpstreamConfig } from './traffic-config.js';
import { readYamlSource, type YamlMap, type YamlSource, type YamlValue } from './yaml-source.js';

export type { AuthorizeRule, InboundConfig, OutboundConfig, UpstreamConfig } from './traffic-config.js';
export type { Http2Codec, Http2Config } from './http2-config.js';

export interface RenewalWindow {
  /** Renew at a random point between these fractions of the certificate's lifetime; 0 < from ≤ to < 1. */
  readonly from: number;
  readonly to: number;
}

export interface CaSourceConfig {
  /** Origin of the CA server, e.g. `https://127.0.0.1:8443`. */
  readonly url: string;
  /** Roots that the CA server's certificate must chain to on first contact. */
  readonly bundle: string;
  /** File holding the join token; optional because a valid SVID on disk renews without one. */
  readonly token: string | undefined;
  /** How often to poll the CA's GET /v1/bundle for roots added or retired (default 5m). */
  readonly bundleRefreshMs: number;
}

export interface FilesSourceConfig {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
}

interface IdentityCommon {
  /** Lifetime to ask the CA for. */
  readonly ttlMs: number;
  readonly renewal: RenewalWindow;
}

export interface CaIdentityConfig extends IdentityCommon {
  readonly source: 'ca';
  readonly ca: CaSourceConfig;
  /** Where the key and SVID persist across restarts. */
  readonly dir: string;
}

export interface FilesIdentityConfig extends IdentityCommon {
  readonly source: 'files';
  readonly files: FilesSourceConfig;
  readonly dir: string | undefined;
}

export type IdentityConfig = CaIdentityConfig | FilesIdentityConfig;

export interface MetricsConfig {
  /** Record meshcar_requests_total, meshcar_request_duration_seconds, meshcar_request_errors_total and the rest of the traffic families. */
  readonly requests: boolean;
}

export interface AdminConfig {
  readonly listen: HostPort;
  /**
   * Names the admin port answers to in Host besides localhost (lower-case). IP addresses always
   * pass: a DNS-rebinding page needs a name, and Prometheus scrapes PODIP:15000.
   */
  readonly hosts: readonly string[];
}

export interface SidecarConfig {
  /** The config file, absolute. */
  readonly file: string;
  readonly service: string;
  readonly trustDomain: string;
  /** spiffe://<trustDomain>/svc/<service> */
  readonly spiffeId: string;
  readonly identity: IdentityConfig;
  /** At least one of inbound and outbound is present. */
  readonly inbound: InboundConfig | undefined;
  readonly outbound: OutboundConfig | undefined;
  readonly admin: AdminConfig;
  readonly log: { readonly level: LogLevel; readonly access: boolean };
  /** requests: false stops the request-level families (counts, durations, errors, /endpoints); process and identity metrics stay. */
  readonly metrics: MetricsConfig;
  /** On SIGTERM/SIGINT, how long in-flight requests may take to finish. */
  readonly drainTimeoutMs: number;
  /** Which HTTP/2 implementation the sidecar hop uses (both directions); a change needs a restart. */
  readonly http2: Http2Config;
  /** Processes carrying traffic (Envoy's --concurrency): 1 (default) runs in this process, `auto` one per core; a change needs a restart. */
  readonly workers: Workers;
}

/** `workers`: a count of at least 1, or `auto` (os.availableParallelism() when the sidecar starts). */
export type Workers = number | 'auto';

const KEYS = ['service', 'trustDomain', 'identity', 'inbound', 'outbound', 'admin', 'log', 'metrics', 'drainTimeout', 'http2', 'workers'];
const DEFAULT_METRICS: MetricsConfig = { requests: true };
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
const DAY_MS = 86_400_000;
const DEFAULT_RENEWAL: RenewalWindow = { from: 0.5, to: 0.7 };
const DEFAULT_ADMIN_LISTEN: HostPort = { host: '127.0.0.1', port: 15000 };
const DEFAULT_ADMIN: AdminConfig = { listen: DEFAULT_ADMIN_LISTEN, hosts: [] };

export async function loadSidecarConfig(file: string): Promise<SidecarConfig> {
  const source = await readYamlSource(file);
  const config = validateSidecarConfig(source);
  if (config === undefined || source.issues.length > 0) throw new ConfigError(source.issues);
  return config;
}

/** The config, or undefined with every mistake appended (sorted) to `source.issues`. */
export function validateSidecarConfig(source: YamlSource): SidecarConfig | undefined {
  const config = check(source);
  sortIssues(source.issues);
  return source.issues.length === 0 ? config : undefined;
}

function check(source: YamlSource): SidecarConfig | undefined {
  const root = source.root?.map(KEYS);
  if (!root) return undefined;
  const service = root.required('service', readService);
  const trustDomain = root.required('trustDomain', readTrustDomain);
  const identity = root.required('identity', readIdentity);
  const inbound = root.optional('inbound', (v) => readInbound(v, trustDomain), undefined);
  const outbound = root.optional('outbound', (v) => readOutbound(v, trustDomain), undefined);
  if (!root.has('inbound') && !root.has('outbound')) {
    root.value.report('give inbound, outbound or both: a sidecar with neither has nothing to do');
  }
  const admin = root.optional('admin', readAdmin, DEFAULT_ADMIN);
  // access log off unless asked for, as Envoy/Istio and Linkerd ship it (README: Logs)
  const log = root.optional('log', readLog, { level: 'info' as LogLevel, access: false });
  const metrics = root.optional('metrics', readMetrics, DEFAULT_METRICS);
  const drainTimeoutMs = root.optional('drainTimeout', readDuration, DEFAULT_DRAIN_TIMEOUT_MS);
  const http2 = root.optional('http2', readHttp2, DEFAULT_HTTP2);
  const workers = root.optional('workers', readWorkers, 1);
  checkListenersDistinct(root);
  if (service === undefined || trustDomain === undefined || identity === undefined || admin === undefined || log === undefined || metrics === undefined || drainTimeoutMs === undefined || http2 === undefined || workers === undefined) return undefined;
  if ((root.has('inbound') && !inbound) || (root.has('outbound') && !outbound)) return undefined;
  const spiffeId = serviceSpiffeId(trustDomain, service);
  return deepFreeze({ file: resolve(source.file), service, trustDomain, spiffeId, identity, inbound, outbound, admin, log, metrics, drainTimeoutMs, http2, workers });
}

/** `workers: 4` or `workers: auto`; anything else is refused with what is allowed. */
function readWorkers(value: YamlValue): Workers | undefined {
  if (value.kind === 'string' && value.string() === 'auto') return 'auto';
  const n = value.kind === 'number' ? value.number('a positive integer') : undefined;
  if (n !== undefined && Number.isSafeInteger(n) && n >= 1) return n;
  return value.report(`must be a positive integer or "auto", not ${value.display()}: how many processes carry traffic (auto: one per core)`);
}

function readService(value: YamlValue): string | undefined {
  const text = value.string('a service name');
  if (text === undefined) return undefined;
  if (!isValidServiceName(text)) return value.report(`${JSON.stringify(text)} is not a service name: use letters, digits, dots, dashes and underscores`);
  return text;
}

function readIdentity(value: YamlValue): IdentityConfig | undefined {
  const map = value.map(['ca', 'files', 'dir', 'ttl', 'renewal']);
  if (!map) return undefined;
  const ca = map.optional('ca', readCaSource, undefined);
  const files = map.optional('files', readFiles, undefined);
  const ttlMs = map.optional('ttl', readDuration, DAY_MS);
  const renewal = map.optional('renewal', readRenewal, DEFAULT_RENEWAL);
  let dir = map.optional('dir', readPath, undefined);
  if (map.has('ca') && map.has('files')) {
    return map.get('files').report('give identity.ca or identity.files, not both: a sidecar has one source of certificates');
  }
  if (!map.has('ca') && !map.has('files')) {
    return value.report('give a source of certificates: identity.ca (the meshcar CA) or identity.files (certificates managed elsewhere)');
  }
  if (map.has('ca') && !map.has('dir')) {
    dir = map.get('dir').report('required with identity.ca: where the sidecar keeps its key and certificate across restarts');
  }
  if (ttlMs === undefined || !renewal || (map.has('dir') && !dir)) return undefined;
  if (files) return { source: 'files', files, dir, ttlMs, renewal };
  return ca && dir ? { source: 'ca', ca, dir, ttlMs, renewal } : undefined;
}

function readCaSource(value: YamlValue): CaSourceConfig | undefined {
  const map = value.map(['url', 'bundle', 'token', 'bundleRefresh']);
  if (!map) return undefined;
  const url = map.required('url', readCaUrl);
  const bundle = map.required('bundle', readPath);
  const token = map.optional('token', readPath, undefined);
  const bundleRefreshMs = map.optional('bundleRefresh', readDuration, 5 * 60_000);
  if (!url || !bundle || (map.has('token') && token === undefined) || bundleRefreshMs === undefined) return undefined;
  return { url, bundle, token, bundleRefreshMs };
}

function readCaUrl(value: YamlValue): string | undefined {
  const text = value.string('an https:// URL');
  if (text === undefined) return undefined;
  const url = parseHttpsUrl(text);
  return typeof url === 'string' ? value.report(`${JSON.stringify(text)} is not a CA URL: ${url}`) : url.origin;
}

function readFiles(value: YamlValue): FilesSourceConfig | undefined {
  const map = value.map(['cert', 'key', 'bundle']);
  if (!map) return undefined;
  const cert = map.required('cert', readPath);
  const key = map.required('key', readPath);
  const bundle = map.required('bundle', readPath);
  return cert && key && bundle ? { cert, key, bundle } : undefined;
}

function readRenewal(value: YamlValue): RenewalWindow | undefined {
  const map = value.map(['from', 'to']);
  if (!map) return undefined;
  const from = map.optional('from', readFraction, DEFAULT_RENEWAL.from);
  const to = map.optional('to', readFraction, DEFAULT_RENEWAL.to);
  if (from === undefined || to === undefined) return undefined;
  if (from > to) return value.report(`from (${from}) must not be greater than to (${to})`);
  return { from, to };
}

/** A fraction of a certificate's lifetime, strictly between 0 and 1. */
function readFraction(value: YamlValue): number | undefined {
  const n = value.number('a fraction of the lifetime, e.g. 0.5');
  if (n === undefined) return undefined;
  return n > 0 && n < 1 ? n : value.report(`${value.display()} must be between 0 and 1 (a fraction of the certificate's lifetime)`);
}

function readAdmin(value: YamlValue): AdminConfig | undefined {
  const map = value.map(['listen', 'hosts']);
  if (!map) return undefined;
  const listen = map.optional('listen', readListenAddress, DEFAULT_ADMIN_LISTEN);
  const hosts = map.optional('hosts', (v) => v.listOf(readAdminHost), DEFAULT_ADMIN.hosts);
  return listen && hosts && { listen, hosts };
}

/** One admin.hosts entry: a DNS name alone (no port, no scheme), kept lower-case. */
function readAdminHost(value: YamlValue): string | undefined {
  const text = value.string('a host name');
  if (text === undefined) return undefined;
  const quoted = JSON.stringify(text);
  if (isIP(text.replace(/^\[(.*)\]$/, '$1')) !== 0) return value.report(`${quoted} is an IP address; IP addresses always pass the Host check, list only names`);
  const name = text.toLowerCase().replace(/\.$/, '');
  if (!isHostname(name)) return value.report(`${quoted} is not a host name; give the name alone, without scheme or port (e.g. meshcar-admin.local)`);
  return name;
}

function readLog(value: YamlValue): { level: LogLevel; access: boolean } | undefined {
  const map = value.map(['level', 'access']);
  if (!map) return undefined;
  const level = map.optional('level', readLogLevel, 'info');
  const access = map.optional('access', (v) => v.boolean(), false);
  return level === undefined || access === undefined ? undefined : { level, access };
}

function readMetrics(value: YamlValue): MetricsConfig | undefined {
  const map = value.map(['requests']);
  if (!map) return undefined;
  const requests = map.optional('requests', (v) => v.boolean(), DEFAULT_METRICS.requests);
  return requests === undefined ? undefined : { requests };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::']);
const LISTENERS = ['inbound', 'outbound', 'admin'] as const;

/**
 * Two listeners on one port would fail at start-up with EADDRINUSE; say which keys clash now.
 * Reads the listen values directly, so a mistake elsewhere in a section does not hide a clash.
 */
function checkListenersDistinct(root: YamlMap): void {
  const listeners = LISTENERS.map((name) => {
    const value = root.get(name).peek('listen');
    const text = value?.kind === 'string' ? value.string() : undefined;
    const parsed = text === undefined ? undefined : parseHostPort(text, { allowPortZero: true });
    const address = typeof parsed === 'object' ? parsed : name === 'admin' && !value ? DEFAULT_ADMIN_LISTEN : undefined;
    return { name, value, address };
  });
  const clash = (a: HostPort, b: HostPort): boolean => a.port === b.port && (a.host === b.host || WILDCARD_HOSTS.has(a.host) || WILDCARD_HOSTS.has(b.host));
  listeners.forEach((later, i) => {
    const a = later.address;
    if (!a || a.port === 0) return;
    const earlier = listeners.find((b, j) => j < i && b.address !== undefined && clash(a, b.address));
    if (!earlier) return;
    // Only admin.listen has a default; when it is the one not written, blame the one that is.
    if (later.value) later.value.report(`${formatHostPort(a)} clashes with ${earlier.name}.listen: each listener needs its own port`);
    else earlier.value?.report(`clashes with ${later.name}.listen (default ${formatHostPort(a)}): pick another port or set ${later.name}.listen`);
  });
}

/** What a reload does with a new config: the parts applied live, and the ones that need a restart. */
export interface ReloadPlan {
  /** The config that will really run: the new file's live parts over the running config. */
  readonly effective: SidecarConfig;
  /** Key paths (as written in YAML) that changed and are applied live. */
  readonly applied: readonly string[];
  /** Key paths that changed but keep their running value until a restart. */
  readonly restartRequired: readonly string[];
}

/** The keys a running sidecar can change without a restart (YAML key paths). */
export const LIVE_RELOAD_KEYS = ['admin.hosts', 'inbound.authorize', 'inbound.rateLimit', 'inbound.timeout', 'inbound.idleTimeout', 'inbound.routes', 'inbound.openapi', 'outbound.upstreams', 'log.level', 'log.access', 'metrics.requests', 'drainTimeout'] as const;

/**
 * Takes the live parts of `next` (admin host names, authorization rules, rate limits, inbound timeouts, outbound upstreams, log level and
 * access log, request metrics, drain timeout) over `running`; every other difference is listed as needing a
 * restart, and keeps its running value in `effective`.
 */
export function planReload(running: SidecarConfig, next: SidecarConfig): ReloadPlan {
  const inbound = running.inbound && next.inbound ? liveInbound(running.inbound, next.inbound) : running.inbound;
  // the upstream list is live (added, removed, changed); outbound.listen is not
  const outbound = running.outbound && next.outbound ? { ...running.outbound, upstreams: next.outbound.upstreams } : running.outbound;
  // admin.hosts is live; admin.listen is not
  const admin = { ...running.admin, hosts: next.admin.hosts };
  const effective = deepFreeze({ ...running, admin, inbound, ...(outbound ? { outbound } : {}), log: next.log, metrics: next.metrics, drainTimeoutMs: next.drainTimeoutMs });
  return { effective, applied: changedPaths(running, effective), restartRequired: changedPaths(effective, next) };
}

function liveInbound(running: InboundConfig, next: InboundConfig): InboundConfig {
  const { rateLimit: _rateLimit, idleTimeoutMs: _idle, routes: _routes, openapi: _openapi, ...rest } = running;
  return {
    ...rest,
    authorize: next.authorize,
    timeoutMs: next.timeoutMs,
    ...(next.rateLimit ? { rateLimit: next.rateLimit } : {}),
    ...(next.idleTimeoutMs !== undefined ? { idleTimeoutMs: next.idleTimeoutMs } : {}),
    ...(next.routes ? { routes: next.routes } : {}),
    ...(next.openapi ? { openapi: next.openapi } : {}),
  };
}

/** Derived or bookkeeping fields: a change in them shows as a change of what they derive from. */
const DERIVED_KEYS = new Set(['file', 'spiffeId', 'identity.source']);
/** Objects reported as one value: an address is one key in the YAML. */
const WHOLE_VALUE_KEYS = new Set(['listen', 'app']);

/** Key paths whose values differ, named as in the YAML (`drainTimeout`, `outbound.upstreams.payments.timeout`). */
export function changedPaths(a: SidecarConfig, b: SidecarConfig): string[] {
  const paths: string[] = [];
  walk(a, b, '', '');
  return paths;

  function walk(x: unknown, y: unknown, path: string, key: string): void {
    if (DERIVED_KEYS.has(path)) return;
    if (path === 'outbound.upstreams' && Array.isArray(x) && Array.isArray(y)) {
      walk(byName(x as UpstreamConfig[]), byName(y as UpstreamConfig[]), path, key);
      return;
    }
    if (isPlainObject(x) && isPlainObject(y) && !WHOLE_VALUE_KEYS.has(key)) {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of keys) walk(x[k], y[k], path === '' ? yamlKey(k) : `${path}.${yamlKey(k)}`, k);
      return;
    }
    if (JSON.stringify(x) !== JSON.stringify(y)) paths.push(path);
  }
}

function byName(upstreams: readonly UpstreamConfig[]): Record<string, UpstreamConfig> {
  return Object.fromEntries(upstreams.map((u) => [u.name, u]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `timeoutMs` → `timeout`: the typed config keeps the unit, the YAML does not. */
function yamlKey(key: string): string {
  return key.endsWith('Ms') ? key.slice(0, -2) : key;
}

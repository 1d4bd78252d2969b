// The sidecar's config: YAML file → checked, typed, frozen SidecarConfig (contract: DESIGN.md,
// "Sidecar configuration"). The top level lives here (service, admin, log, metrics, workers,
// and the check that no two listeners share a port); each section with a file of its own is
// read there: identity-config.ts, inbound-config.ts, outbound-config.ts, http2-config.ts, http1-config.ts.
// What a reload may change is decided in reload-plan.ts.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { serviceNameProblem, serviceSpiffeId } from '../identity/spiffe-id.js';
import { canonicalHost, formatHostPort, type HostPort, isHostname, parseHostPort, reachesListener, sameAddress } from './address.js';
import { otherKindMessage } from './config-kind.js';
import { deepFreeze } from './freeze.js';
import { type LogLevel, readDuration, readListenAddress, readLogLevel, readTrustDomain } from './fields.js';
import { DEFAULT_HTTP2, type Http2Config, readHttp2 } from './http2-config.js';
import { DEFAULT_HTTP1, type Http1Config, readHttp1 } from './http1-config.js';
import { type IdentityConfig, readIdentity } from './identity-config.js';
import { type InboundConfig, readInbound } from './inbound-config.js';
import { ConfigError, sortIssues } from './issues.js';
import { type OutboundConfig, readOutbound } from './outbound-config.js';
import { placeMisplacedKeys } from './misplaced-keys.js';
import { ADMIN_KEYS, KEYS, LOG_KEYS, METRICS_KEYS, SECTIONS } from './sidecar-sections.js';
import { readYamlSource, type YamlSource } from './yaml-source.js';
import type { YamlMap, YamlValue } from './yaml-value.js';

export type { AuthorizeRule, InboundConfig } from './inbound-config.js';
export type { OutboundConfig, UpstreamConfig } from './outbound-config.js';
export type { Http2Codec, Http2Config } from './http2-config.js';
export type { Http1AppClient, Http1Config } from './http1-config.js';

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
  readonly http1: Http1Config;
  /** Processes carrying traffic (Envoy's --concurrency): 1 (default) runs in this process, `auto` one per core; a change needs a restart. */
  readonly workers: Workers;
}

/** `workers`: a count of at least 1, or `auto` (the cores this process may use, its CPU limit and 64, when the sidecar starts: src/workers/worker-count.ts). */
export type Workers = number | 'auto';

const DEFAULT_METRICS: MetricsConfig = { requests: true };
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
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
  placeMisplacedKeys(source.issues, SECTIONS, source.root?.node);
  sortIssues(source.issues);
  return source.issues.length === 0 ? config : undefined;
}

function check(source: YamlSource): SidecarConfig | undefined {
  // a CA config would list each of its keys as unknown; one line says what it is
  const otherKind = otherKindMessage(source.root, 'sidecar');
  if (otherKind) return source.root?.report(otherKind);
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
  const http1 = root.optional('http1', readHttp1, DEFAULT_HTTP1);
  const workers = root.optional('workers', readWorkers, 1);
  checkListenersDistinct(root);
  // the app's address must not be this sidecar's own outbound port: each request the inbound
  // passes on would go out again through the outbound, to an upstream that may be this inbound
  if (inbound && outbound && reachesListener(outbound.listen, inbound.app)) {
    root.get('inbound').peek('app')?.report(`${formatHostPort(inbound.app)} is outbound.listen: the sidecar would send each request it receives out again through itself; give the app's own address`);
    return undefined;
  }
  if (service === undefined || trustDomain === undefined || identity === undefined || admin === undefined || log === undefined || metrics === undefined || drainTimeoutMs === undefined || http2 === undefined || http1 === undefined || workers === undefined) return undefined;
  if ((root.has('inbound') && !inbound) || (root.has('outbound') && !outbound)) return undefined;
  const spiffeId = serviceSpiffeId(trustDomain, service);
  return deepFreeze({ file: resolve(source.file), service, trustDomain, spiffeId, identity, inbound, outbound, admin, log, metrics, drainTimeoutMs, http2, http1, workers });
}

/**
 * The most `workers` takes. Each worker is a whole Node process (30-50 MB, its own sessions to
 * every upstream), and more workers than cores only share the cores; 64 covers the largest
 * machines a sidecar sits on, where `auto` is the better choice anyway.
 */
export const MAX_WORKERS = 64;

/** `workers: 4` or `workers: auto`; anything else is refused with what is allowed. */
function readWorkers(value: YamlValue): Workers | undefined {
  if (value.kind === 'string' && value.string() === 'auto') return 'auto';
  const n = value.kind === 'number' ? value.number('a positive integer') : undefined;
  if (n !== undefined && Number.isSafeInteger(n) && n > MAX_WORKERS) return value.report(`${value.display()} is too many: at most ${MAX_WORKERS} processes, or "auto" for one per core`);
  if (n !== undefined && Number.isSafeInteger(n) && n >= 1) return n;
  return value.report(`must be a positive integer or "auto", not ${value.display()}: how many processes carry traffic (auto: one per core)`);
}

function readService(value: YamlValue): string | undefined {
  const text = value.string('a service name');
  if (text === undefined) return undefined;
  const problem = serviceNameProblem(text);
  if (problem !== undefined) return value.report(`${JSON.stringify(text)} is not a service name: ${problem}`);
  return text;
}

function readAdmin(value: YamlValue): AdminConfig | undefined {
  const map = value.map(ADMIN_KEYS);
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
  const map = value.map(LOG_KEYS);
  if (!map) return undefined;
  const level = map.optional('level', readLogLevel, 'info');
  const access = map.optional('access', (v) => v.boolean(), false);
  return level === undefined || access === undefined ? undefined : { level, access };
}

function readMetrics(value: YamlValue): MetricsConfig | undefined {
  const map = value.map(METRICS_KEYS);
  if (!map) return undefined;
  const requests = map.optional('requests', (v) => v.boolean(), DEFAULT_METRICS.requests);
  return requests === undefined ? undefined : { requests };
}

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
  // canonical forms: [0:0:0:0:0:0:0:0] is the wildcard ::, [0:0:0:0:0:0:0:1] is [::1] (sameAddress).
  // :: takes its port on every address (Node binds it dual-stack); 0.0.0.0 on every IPv4 one
  // only: [::1]:P binds beside 0.0.0.0:P (a host name may resolve to IPv4: taken as clashing)
  // a zone narrows only a link-local address (fe80::/10): [::%lo] binds as ::, [::1%lo] as [::1]
  const bound = (host: string): string => {
    const canonical = canonicalHost(host);
    return /^fe[89ab]/i.test(canonical) ? canonical : canonical.replace(/%.*$/, '');
  };
  const covers = (wildcard: string, other: string): boolean => {
    const host = bound(wildcard);
    return host === '::' || (host === '0.0.0.0' && isIP(bound(other)) !== 6);
  };
  const clash = (a: HostPort, b: HostPort): boolean => a.port === b.port && (sameAddress(bound(a.host), bound(b.host)) || covers(a.host, b.host) || covers(b.host, a.host));
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

// The running config as the user writes it, for the admin `/config`: YAML key names and units
// (`timeout: 15s`, not `timeoutMs: 15000`; `listen: 127.0.0.1:15000`; upstreams as a map), with
// every default filled in, so what is shown can be pasted back into a config file. A setting
// that is absent (no inbound, no token, no rules, no routes) is left out rather than shown as
// null or []: the config readers refuse both, and leaving a key out means the same thing.

import { DEFAULT_MAX_BUFFERED } from '../schema/body-budget.js';
import { formatDuration } from './duration.js';
import { formatHostPort, type HostPort } from './address.js';
import type { OpenApiConfig } from './openapi-config.js';
import type { SidecarConfig } from './sidecar-config.js';
import { DEFAULT_INBOUND_IDLE_TIMEOUT_MS, DEFAULT_INBOUND_LIMITS, DEFAULT_INBOUND_MAX_SESSION_AGE_MS, type InboundConfig, type RateSpec } from './inbound-config.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TUNNEL_IDLE_TIMEOUT_MS } from './fields.js';
import type { UpstreamConfig } from './outbound-config.js';
import { DEFAULT_CIRCUIT, DEFAULT_DECAY_MS, DEFAULT_OUTLIER, DEFAULT_RETRIES } from './upstream-policy-config.js';

/** Outbound DNS re-resolution when outbound.dnsRefresh is not written (the outbound's default). */
const DEFAULT_DNS_REFRESH_MS = 5_000;
/** Upstream idleTimeout when not written: the same 5 minutes as the inbound's. */
const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = DEFAULT_INBOUND_IDLE_TIMEOUT_MS;

const duration = (ms: number): string => formatDuration(ms);

function size(bytes: number): string | number {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}MiB`;
  return bytes % 1024 === 0 ? `${bytes / 1024}KiB` : bytes;
}

function rate(spec: RateSpec | undefined): Record<string, unknown> | undefined {
  return spec && { rate: rateText(spec.perSecond), burst: spec.burst };
}

/** A rate as it can be written: whole requests per second, else per minute, else per hour (100/m, not 1.666…/s). */
function rateText(perSecond: number): string {
  for (const [unit, seconds] of [['s', 1], ['m', 60]] as const) {
    const count = Math.round(perSecond * seconds);
    if (Math.abs(count - perSecond * seconds) < 1e-6) return `${count}/${unit}`;
  }
  return `${Math.round(perSecond * 3600)}/h`;
}

/** null: no spec, calls are not checked. */
function openapi(config: OpenApiConfig | undefined): Record<string, unknown> | null {
  return config ? { spec: config.spec, mode: config.mode, maxBodySize: size(config.maxBodySize), maxBuffered: size(config.maxBuffered ?? DEFAULT_MAX_BUFFERED) } : null;
}

function hostPort(address: HostPort): string {
  return formatHostPort(address);
}

function inboundView(inbound: InboundConfig): Record<string, unknown> {
  const limits = { ...DEFAULT_INBOUND_LIMITS, ...inbound.limits };
  return {
    listen: hostPort(inbound.listen),
    app: `${inbound.app.protocol}://${hostPort(inbound.app)}`,
    timeout: duration(inbound.timeoutMs),
    idleTimeout: duration(inbound.idleTimeoutMs ?? DEFAULT_INBOUND_IDLE_TIMEOUT_MS),
    tunnelIdleTimeout: duration(inbound.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_MS),
    routes: (inbound.routes ?? []).map((r) => ({ path: r.path, ...(r.timeoutMs !== undefined ? { timeout: duration(r.timeoutMs) } : {}), ...(r.idleTimeoutMs !== undefined ? { idleTimeout: duration(r.idleTimeoutMs) } : {}) })),
    // null: no rules, so any identity of the trust domain may call
    authorize: inbound.authorize ? inbound.authorize.map((r) => ({ from: r.from, ...(r.methods ? { methods: r.methods } : {}), ...(r.paths ? { paths: r.paths } : {}) })) : null,
    rateLimit: inbound.rateLimit ? { perIdentity: rate(inbound.rateLimit.perIdentity) ?? null, total: rate(inbound.rateLimit.total) ?? null } : null,
    limits: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: size(limits.maxHeaderListSize),
      maxResetsPer10s: limits.maxResetsPer10s,
      maxSessionAge: duration(limits.maxSessionAgeMs ?? DEFAULT_INBOUND_MAX_SESSION_AGE_MS),
      maxConnectionsPerCaller: limits.maxConnectionsPerCaller,
      maxHandshakesPerAddress: limits.maxHandshakesPerAddress,
      maxHandshakes: limits.maxHandshakes,
      maxBufferedPerCaller: size(limits.maxBufferedPerCaller),
      maxPipelined: limits.maxPipelined,
      maxAppConnections: limits.maxAppConnections,
      maxAppWaiting: limits.maxAppWaiting,
    },
    openapi: openapi(inbound.openapi),
    sessionResumption: inbound.sessionResumption === true,
  };
}

function upstreamView(u: UpstreamConfig): Record<string, unknown> {
  const retries = u.retries ?? DEFAULT_RETRIES;
  const circuit = u.circuitBreaker ?? DEFAULT_CIRCUIT;
  const outlier = u.outlierDetection ?? DEFAULT_OUTLIER;
  return {
    endpoints: u.endpoints.map((e) => (e.kind === 'dns' ? `dns:${e.host}:${e.port}` : hostPort(e))),
    identity: u.identity,
    timeout: duration(u.timeoutMs),
    connectTimeout: duration(u.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    routes: u.routes,
    idleTimeout: duration(u.idleTimeoutMs ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS),
    tunnelIdleTimeout: duration(u.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_MS),
    retries: {
      attempts: retries.attempts,
      budget: { ratio: retries.budgetRatio, minPerSecond: retries.budgetMinPerSecond },
      backoff: { base: duration(retries.backoffBaseMs), max: duration(retries.backoffMaxMs) },
      bufferLimit: size(retries.bufferLimitBytes),
    },
    balancer: { decay: duration(u.balancer?.decayMs ?? DEFAULT_DECAY_MS) },
    circuitBreaker: { maxRequests: circuit.maxRequests, maxPending: circuit.maxPending },
    outlierDetection: {
      consecutiveFailures: outlier.consecutiveFailures,
      baseEjection: duration(outlier.baseEjectionMs),
      maxEjection: duration(outlier.maxEjectionMs),
      maxEjectionPercent: outlier.maxEjectionPercent,
    },
    openapi: openapi(u.openapi),
  };
}

/** The value without null and empty-list members, at every depth (see the header). */
function withoutAbsent(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutAbsent);
  if (value === null || typeof value !== 'object') return value;
  const kept = Object.entries(value).filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0));
  return Object.fromEntries(kept.map(([k, v]) => [k, withoutAbsent(v)]));
}

/** The effective sidecar config in YAML key names, defaults included (JSON-able; absent settings left out). */
export function effectiveYamlView(config: SidecarConfig): Record<string, unknown> {
  return withoutAbsent(fullView(config)) as Record<string, unknown>;
}

function fullView(config: SidecarConfig): Record<string, unknown> {
  const { identity } = config;
  const source = identity.source === 'ca' ? { ca: { url: identity.ca.url, bundle: identity.ca.bundle, token: identity.ca.token ?? null, bundleRefresh: duration(identity.ca.bundleRefreshMs) } } : { files: { ...identity.files } };
  return {
    service: config.service,
    trustDomain: config.trustDomain,
    identity: { ...source, dir: identity.dir ?? null, ttl: duration(identity.ttlMs), renewal: { from: identity.renewal.from, to: identity.renewal.to } },
    inbound: config.inbound ? inboundView(config.inbound) : null,
    outbound: config.outbound
      ? {
          listen: hostPort(config.outbound.listen),
          dnsRefresh: duration(config.outbound.dnsRefreshMs ?? DEFAULT_DNS_REFRESH_MS),
          upstreams: Object.fromEntries(config.outbound.upstreams.map((u) => [u.name, upstreamView(u)])),
        }
      : null,
    admin: { listen: hostPort(config.admin.listen), hosts: config.admin.hosts },
    log: { level: config.log.level, access: config.log.access },
    metrics: { requests: config.metrics.requests },
    drainTimeout: duration(config.drainTimeoutMs),
    http2: { codec: config.http2.codec },
    http1: { appClient: config.http1.appClient },
    workers: config.workers,
  };
}

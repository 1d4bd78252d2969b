// What a reload does with a new config: the keys a running sidecar changes live, the effective
// config (the new file's live parts over the running one), and the key paths, named as in the
// YAML, that differ between two configs (applied, or waiting for a restart), and whether the
// file changes the sidecar's identity (then a reload refuses it whole).

import { deepFreeze } from './freeze.js';
import type { InboundConfig } from './inbound-config.js';
import type { UpstreamConfig } from './outbound-config.js';
import type { SidecarConfig } from './sidecar-config.js';

/** What a reload does with a new config: the parts applied live, and the ones that need a restart. */
export interface ReloadPlan {
  /** The config that will really run: the new file's live parts over the running config. */
  readonly effective: SidecarConfig;
  /** Key paths (as written in YAML) that changed and are applied live. */
  readonly applied: readonly string[];
  /** Key paths that changed but keep their running value until a restart. */
  readonly restartRequired: readonly string[];
  /** IDENTITY_KEYS that changed: the whole file is refused (see IDENTITY_KEYS). */
  readonly identityChanged: readonly IdentityKey[];
}

/** The keys a running sidecar can change without a restart (YAML key paths). */
export const LIVE_RELOAD_KEYS = ['admin.hosts', 'inbound.authorize', 'inbound.rateLimit', 'inbound.timeout', 'inbound.idleTimeout', 'inbound.tunnelIdleTimeout', 'inbound.routes', 'inbound.openapi', 'outbound.upstreams', 'log.level', 'log.access', 'metrics.requests', 'drainTimeout'] as const;

/**
 * Restart-only keys that live keys are checked against: `trustDomain` (every SPIFFE ID in
 * `inbound.authorize` and `outbound.upstreams.*.identity` must be in it) and `service` (the
 * sidecar's own SPIFFE ID). A file that changes one was written for another identity; its live
 * keys applied under the running one deny every caller or never match an upstream, and /config
 * would show a config `meshcar check` rejects. So such a file is refused whole, as Envoy NACKs
 * an xDS update with any invalid part and keeps the last good one, and as Linkerd ties a
 * proxy's identity to its lifetime: a new identity means a restart, never a half reload.
 */
export const IDENTITY_KEYS = ['trustDomain', 'service'] as const;
export type IdentityKey = (typeof IDENTITY_KEYS)[number];

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
  const identityChanged = IDENTITY_KEYS.filter((key) => running[key] !== next[key]);
  return { effective, applied: changedPaths(running, effective), restartRequired: changedPaths(effective, next), identityChanged };
}

function liveInbound(running: InboundConfig, next: InboundConfig): InboundConfig {
  const { rateLimit: _rateLimit, idleTimeoutMs: _idle, tunnelIdleTimeoutMs: _tunnelIdle, routes: _routes, openapi: _openapi, ...rest } = running;
  return {
    ...rest,
    authorize: next.authorize,
    timeoutMs: next.timeoutMs,
    ...(next.rateLimit ? { rateLimit: next.rateLimit } : {}),
    ...(next.idleTimeoutMs !== undefined ? { idleTimeoutMs: next.idleTimeoutMs } : {}),
    ...(next.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: next.tunnelIdleTimeoutMs } : {}),
    ...(next.routes ? { routes: next.routes } : {}),
    ...(next.openapi ? { openapi: next.openapi } : {}),
  };
}

/** Derived or bookkeeping fields: a change in them shows as a change of what they derive from. */
const DERIVED_KEYS = new Set(['file', 'spiffeId', 'identity.source', 'identity.unusedKeys']);
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

/**
 * Typed fields laid out otherwise in the YAML (effective-yaml.ts renders them back the same
 * way): a rate is `rate: 10/s`, and the retry policy's budget and backoff are maps of their own.
 */
const YAML_KEYS: ReadonlyMap<string, string> = new Map([
  ['perSecond', 'rate'],
  ['budgetRatio', 'budget.ratio'],
  ['budgetMinPerSecond', 'budget.minPerSecond'],
  ['backoffBaseMs', 'backoff.base'],
  ['backoffMaxMs', 'backoff.max'],
  ['bufferLimitBytes', 'bufferLimit'],
]);

/** `timeoutMs` → `timeout`: the typed config keeps the unit, the YAML does not. */
function yamlKey(key: string): string {
  const renamed = YAML_KEYS.get(key);
  if (renamed !== undefined) return renamed;
  return key.endsWith('Ms') ? key.slice(0, -2) : key;
}

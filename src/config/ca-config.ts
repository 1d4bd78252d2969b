// The CA server's config: YAML file → checked, typed, frozen CaConfig (contract: DESIGN.md,
// "CA configuration").

import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { isServerName, type HostPort } from './address.js';
import { otherKindMessage } from './config-kind.js';
import { deepFreeze } from './freeze.js';
import { DAY_MS, formatDuration } from './duration.js';
import { type LogLevel, MAX_LIFETIME_MS, readDuration, readListenAddress, readLogLevel, readPath, readPositiveInteger, readRate, MAX_BURST, readTrustDomain } from './fields.js';
import { ConfigError, sortIssues } from './issues.js';
import { readYamlSource, type YamlSource } from './yaml-source.js';
import type { YamlValue } from './yaml-value.js';

export interface RateLimitConfig {
  /** Tokens added per second (from `20/s`, `60/m` or `3600/h`). */
  readonly perSecond: number;
  readonly burst: number;
}

export interface CaConfig {
  /** The config file, absolute. */
  readonly file: string;
  readonly trustDomain: string;
  /** Absolute path of the directory `meshcar ca init` made. */
  readonly dir: string;
  readonly listen: HostPort;
  /** DNS names and IP addresses for the CA server certificate's SANs. */
  readonly serverNames: readonly string[];
  readonly maxTtlMs: number;
  /** Lifetime given when a request asks for none; never above maxTtlMs. */
  readonly defaultTtlMs: number;
  /** Per client address. */
  readonly rateLimit: RateLimitConfig;
  readonly log: { readonly level: LogLevel };
  /** Automatic issuer rotation: a new issuer when the signing one has less than beforeMs left. */
  readonly issuerRotation?: { readonly beforeMs: number; readonly ttlMs: number };
}

const KEYS = ['trustDomain', 'dir', 'listen', 'serverNames', 'maxTtl', 'defaultTtl', 'rateLimit', 'log', 'issuerRotation'];
/** The lifetime of an issuer (a year), as `meshcar ca init` and `rotate-issuer` make it. */
const ISSUER_TTL_MS = 365 * DAY_MS;

export async function loadCaConfig(file: string): Promise<CaConfig> {
  const source = await readYamlSource(file);
  const config = validateCaConfig(source);
  if (config === undefined || source.issues.length > 0) throw new ConfigError(source.issues);
  return config;
}

/** The config, or undefined with every mistake appended (sorted) to `source.issues`. */
export function validateCaConfig(source: YamlSource): CaConfig | undefined {
  const config = check(source);
  sortIssues(source.issues);
  return source.issues.length === 0 ? config : undefined;
}

function check(source: YamlSource): CaConfig | undefined {
  // a sidecar config would list each of its keys as unknown; one line says what it is
  const otherKind = otherKindMessage(source.root, 'ca');
  if (otherKind) return source.root?.report(otherKind);
  const root = source.root?.map(KEYS);
  if (!root) return undefined;
  const trustDomain = root.required('trustDomain', readTrustDomain);
  const dir = root.required('dir', readPath);
  const listen = root.optional('listen', readListenAddress, { host: '127.0.0.1', port: 8443 });
  const serverNames = root.optional('serverNames', (v) => v.listOf(readServerName, 'list at least one DNS name or IP address'), ['localhost', '127.0.0.1']);
  const maxTtlMs = root.optional('maxTtl', readLeafLifetime, DAY_MS);
  const defaultTtlValue = root.get('defaultTtl');
  // Lowering maxTtl alone should just work, so the default follows it down.
  let defaultTtlMs = defaultTtlValue.present ? readLeafLifetime(defaultTtlValue) : Math.min(DAY_MS, maxTtlMs ?? DAY_MS);
  if (defaultTtlMs !== undefined && maxTtlMs !== undefined && defaultTtlMs > maxTtlMs) {
    // (config/example-ca.yaml writes defaultTtl: 24h: lowering maxTtl there meets this)
    // the values as the file writes them (48h, not 2d); maxTtl's default as the docs write it
    const maxTtlValue = root.get('maxTtl');
    const maxTtlText = maxTtlValue.present ? maxTtlValue.display() : '"24h", its default';
    defaultTtlMs = defaultTtlValue.report(`${defaultTtlValue.display()} must not be longer than maxTtl (${maxTtlText}): lower it, or leave it out and it follows maxTtl`);
  }
  const rateLimit = root.optional('rateLimit', readRateLimit, { perSecond: 20, burst: 50 });
  const log = root.optional('log', readLog, { level: 'info' as LogLevel });
  const issuerRotation = root.optional('issuerRotation', readIssuerRotation, undefined);
  if (root.has('issuerRotation') && issuerRotation === undefined) return undefined;
  if (trustDomain === undefined || dir === undefined || listen === undefined || serverNames === undefined) return undefined;
  if (maxTtlMs === undefined || defaultTtlMs === undefined || rateLimit === undefined || log === undefined) return undefined;
  return deepFreeze({ file: resolve(source.file), trustDomain, dir, listen, serverNames, maxTtlMs, defaultTtlMs, rateLimit, log, ...(issuerRotation ? { issuerRotation } : {}) });
}

/** Certificate lifetimes are date offsets, never a timer's wait: up to the root's 10 years. */
function readLifetime(value: YamlValue): number | undefined {
  return readDuration(value, { maxMs: MAX_LIFETIME_MS });
}

/** A leaf's lifetime granted (maxTtl, defaultTtl): at least 1s, as identity.ttl, since a leaf of 1ms is born expired. */
function readLeafLifetime(value: YamlValue): number | undefined {
  return readDuration(value, { minMs: 1000, maxMs: MAX_LIFETIME_MS });
}

function readServerName(value: YamlValue): string | undefined {
  const text = value.string('a DNS name or IP address');
  if (text === undefined) return undefined;
  // an iPAddress SAN is 4 or 16 bytes: a zone (%lo) made node-forge encode another address, or 17 bytes
  if (isIPv6(text) && text.includes('%')) return value.report(`${JSON.stringify(text)}: an IPv6 address with a zone cannot be a certificate name; give it without %${text.slice(text.indexOf('%') + 1)}`);
  return isServerName(text) ? text.toLowerCase() : value.report(`${JSON.stringify(text)} is neither a DNS name nor an IP address`);
}

function readRateLimit(value: YamlValue): RateLimitConfig | undefined {
  const map = value.map(['rate', 'burst']);
  if (!map) return undefined;
  const perSecond = map.optional('rate', readRate, 20);
  const burst = map.optional('burst', (v) => readPositiveInteger(v, MAX_BURST, ' (ten seconds of the largest rate)'), 50);
  return perSecond === undefined || burst === undefined ? undefined : { perSecond, burst };
}

function readLog(value: YamlValue): { level: LogLevel } | undefined {
  const map = value.map(['level']);
  const level = map?.optional('level', readLogLevel, 'info');
  return level === undefined ? undefined : { level };
}

/** The least time a new issuer lives before it is due for rotation itself (ttl - before). */
const MIN_ISSUER_ROTATION_GAP_MS = 60_000;

function readIssuerRotation(value: YamlValue): { beforeMs: number; ttlMs: number } | undefined {
  const map = value.map(['before', 'ttl']);
  if (!map) return undefined;
  const beforeMs = map.required('before', readLifetime);
  const ttlMs = map.optional('ttl', readLifetime, ISSUER_TTL_MS);
  if (beforeMs === undefined || ttlMs === undefined) return undefined;
  // a new issuer with less than `before` left would be rotated again at once, for ever: and its
  // notAfter is cut to whole seconds, so a gap under a second did that too (a review: 240
  // rotations in 6 s, each issuer kept in issuers/ for its leaves' life); a minute at least
  if (beforeMs >= ttlMs) return map.get('before').report(`must be shorter than the issuer lifetime (ttl ${formatDuration(ttlMs)})`);
  if (ttlMs - beforeMs < MIN_ISSUER_ROTATION_GAP_MS) return map.get('before').report(`must leave a new issuer at least ${formatDuration(MIN_ISSUER_ROTATION_GAP_MS)} before it is rotated in turn (ttl ${formatDuration(ttlMs)} - before ${formatDuration(beforeMs)} is ${formatDuration(ttlMs - beforeMs)}); otherwise the CA rotates its issuer again and again`);
  return { beforeMs, ttlMs };
}

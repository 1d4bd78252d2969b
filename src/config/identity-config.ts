// The sidecar config's `identity` section: where the workload's certificates come from (the
// meshcar CA with a join token, or files managed elsewhere), where they persist, the lifetime
// to ask for and when to renew. Read by the composition root to start the identity.

import { parseHttpsUrl, quotedUrl } from './address.js';
import { MAX_LIFETIME_MS, readDuration, readPath } from './fields.js';
import type { YamlValue } from './yaml-value.js';
import { DAY_MS } from './duration.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const IDENTITY_SECTION_KEYS: readonly string[] = ['ca', 'files', 'dir', 'ttl', 'renewal'];
export const IDENTITY_CA_KEYS: readonly string[] = ['url', 'bundle', 'token', 'bundleRefresh'];
export const IDENTITY_FILES_KEYS: readonly string[] = ['cert', 'key', 'bundle'];
export const RENEWAL_KEYS: readonly string[] = ['from', 'to'];

export interface RenewalWindow {
  /** Renew at a random point between these fractions of the certificate's lifetime; 0.1 ≤ from ≤ to ≤ 0.9. */
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
  /** The keys given beside `files` that only `identity.ca` uses (files-identity-warning.ts). */
  readonly unusedKeys: readonly string[];
}

/** What meshcar does with each key of `identity` that only an SVID from its CA uses. */
export const CA_ONLY_IDENTITY_KEYS: Readonly<Record<string, string>> = {
  dir: 'where an SVID from the meshcar CA is kept',
  ttl: 'the lifetime asked of the meshcar CA',
  renewal: 'when an SVID from the meshcar CA is renewed',
};

export type IdentityConfig = CaIdentityConfig | FilesIdentityConfig;

const DEFAULT_RENEWAL: RenewalWindow = { from: 0.5, to: 0.7 };

export function readIdentity(value: YamlValue): IdentityConfig | undefined {
  const map = value.map(IDENTITY_SECTION_KEYS);
  if (!map) return undefined;
  const ca = map.optional('ca', readCaSource, undefined);
  const files = map.optional('files', readFiles, undefined);
  const ttlMs = map.optional('ttl', readTtl, DAY_MS);
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
  if (files) return { source: 'files', files, dir, ttlMs, renewal, unusedKeys: Object.keys(CA_ONLY_IDENTITY_KEYS).filter((key) => map.has(key)) };
  return ca && dir ? { source: 'ca', ca, dir, ttlMs, renewal } : undefined;
}

/**
 * The lifetime to ask for: at least 1s, the CA's own minimum (a shorter one passes here and is
 * refused at start-up); a date offset, never a timer's wait (renewal caps its timer), so it may
 * pass 24 days, up to the root's 10 years. The CA still caps it at its maxTtl.
 */
function readTtl(value: YamlValue): number | undefined {
  return readDuration(value, { minMs: 1000, maxMs: MAX_LIFETIME_MS });
}

function readCaSource(value: YamlValue): CaSourceConfig | undefined {
  const map = value.map(IDENTITY_CA_KEYS);
  if (!map) return undefined;
  const url = map.required('url', readCaUrl);
  const bundle = map.required('bundle', readPath);
  const token = map.optional('token', readPath, undefined);
  const bundleRefreshMs = map.optional('bundleRefresh', readBundleRefresh, 5 * 60_000);
  if (!url || !bundle || (map.has('token') && token === undefined) || bundleRefreshMs === undefined) return undefined;
  return { url, bundle, token, bundleRefreshMs };
}

function readCaUrl(value: YamlValue): string | undefined {
  const text = value.string('an https:// URL');
  if (text === undefined) return undefined;
  const url = parseHttpsUrl(text);
  return typeof url === 'string' ? value.report(`${quotedUrl(text)} is not a CA URL: ${url}`) : url.origin;
}

function readFiles(value: YamlValue): FilesSourceConfig | undefined {
  const map = value.map(IDENTITY_FILES_KEYS);
  if (!map) return undefined;
  const cert = map.required('cert', readPath);
  const key = map.required('key', readPath);
  const bundle = map.required('bundle', readPath);
  return cert && key && bundle ? { cert, key, bundle } : undefined;
}

function readRenewal(value: YamlValue): RenewalWindow | undefined {
  const map = value.map(RENEWAL_KEYS);
  if (!map) return undefined;
  const from = map.optional('from', readFraction, DEFAULT_RENEWAL.from);
  const to = map.optional('to', readFraction, DEFAULT_RENEWAL.to);
  if (from === undefined || to === undefined) return undefined;
  if (from > to) return value.report(`from (${from}) must not be greater than to (${to})`);
  return { from, to };
}

/**
 * A fraction of a certificate's lifetime, from 0.1 to 0.9. Below a tenth the sidecar renews ten
 * times or more per lifetime, load on the CA for nothing (0.0001 of 24 h is every 9 s); above nine
 * tenths too little is left to retry in while the CA is down (0.9999999 of 24 h is 9 ms).
 */
function readFraction(value: YamlValue): number | undefined {
  const n = value.number('a fraction of the lifetime, e.g. 0.5');
  if (n === undefined) return undefined;
  return n >= 0.1 && n <= 0.9 ? n : value.report(`${value.display()} must be from 0.1 to 0.9 (a fraction of the certificate's lifetime: renew neither at once nor at the last moment)`);
}

/** Asking the CA for its bundle back to back only loads it (and the log, while it is down): as outbound.dnsRefresh's floor. */
const MIN_BUNDLE_REFRESH_MS = 100;

function readBundleRefresh(value: YamlValue): number | undefined {
  const ms = readDuration(value);
  if (ms === undefined) return undefined;
  return ms < MIN_BUNDLE_REFRESH_MS ? value.report(`${value.display()} is too short: ask the CA for its bundle at most every ${MIN_BUNDLE_REFRESH_MS}ms`) : ms;
}

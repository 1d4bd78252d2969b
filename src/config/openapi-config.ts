// The `openapi:` key of the inbound side and of each outbound upstream: which OpenAPI spec the
// traffic is held against, and whether a violation is only counted (shadow) or refused
// (enforce). Only the key is read here; the spec file itself is loaded and validated by
// src/schema (at start, on reload, and by `meshcar check`).

import { DEFAULT_MAX_BUFFERED } from '../schema/body-budget.js';
import { readPath } from './fields.js';
import type { YamlValue } from './yaml-value.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const OPENAPI_KEYS: readonly string[] = ['spec', 'mode', 'maxBodySize', 'maxBuffered'];

export type SchemaMode = 'shadow' | 'enforce';

export interface OpenApiConfig {
  /** The spec file (OpenAPI 3.0 or 3.1, YAML or JSON), absolute. */
  readonly spec: string;
  /** shadow: count and log, forward anyway; enforce: refuse with 404/400/415/413. */
  readonly mode: SchemaMode;
  /** JSON request bodies up to this many bytes are validated; a larger one is 413 in enforce mode. */
  readonly maxBodySize: number;
  /** The bytes of bodies this check holds at once, all requests together (default 64 MiB); past it, 503 overloaded in enforce mode. */
  readonly maxBuffered?: number;
}

export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;
const MAX_BODY_SIZE_LIMIT = 64 * 1024 * 1024;
const MAX_BUFFERED_LIMIT = 4 * 1024 * 1024 * 1024;
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, kb: 1000, mib: 1024 * 1024, mb: 1000 * 1000, gib: 1024 * 1024 * 1024, gb: 1000 * 1000 * 1000 };

/** `{spec: config/orders.openapi.yaml, mode: shadow, maxBodySize: 1MiB, maxBuffered: 64MiB}`; mode defaults to shadow (safe to turn on). */
export function readOpenApi(value: YamlValue): OpenApiConfig | undefined {
  const map = value.map(OPENAPI_KEYS);
  if (!map) return undefined;
  const spec = map.required('spec', readPath);
  const mode = map.optional('mode', readMode, 'shadow' as SchemaMode);
  const maxBodySize = map.optional('maxBodySize', readSize, DEFAULT_MAX_BODY_SIZE);
  const maxBuffered = map.optional('maxBuffered', (v) => readSize(v, MAX_BUFFERED_LIMIT, '4GiB'), DEFAULT_MAX_BUFFERED);
  if (spec === undefined || mode === undefined || maxBodySize === undefined || maxBuffered === undefined) return undefined;
  if (maxBuffered < maxBodySize) return map.get('maxBuffered').report(`maxBuffered (${maxBuffered} bytes) must be at least maxBodySize (${maxBodySize} bytes): one whole body must fit`);
  return { spec, mode, maxBodySize, maxBuffered };
}

function readMode(value: YamlValue): SchemaMode | undefined {
  const text = value.string('shadow or enforce');
  if (text === undefined) return undefined;
  if (text === 'shadow' || text === 'enforce') return text;
  return value.report(`${JSON.stringify(text)} is not a mode: write shadow (count and log, forward) or enforce (refuse)`);
}

/**
 * A size in bytes: a number, or `64KiB`, `1MiB`, `500kB`; at most 64 MiB (bodies are held in
 * memory) unless told otherwise. `minText` names a key's own lower bound in the range message,
 * so that one message says the whole range (the caller checks that bound itself).
 */
export function readSize(value: YamlValue, max = MAX_BODY_SIZE_LIMIT, maxText = '64MiB', minText = '0'): number | undefined {
  let bytes: number | undefined;
  if (value.kind === 'number') bytes = value.number();
  else {
    const text = value.string('a size such as 64KiB');
    if (text === undefined) return undefined;
    const m = /^(\d+)\s*([A-Za-z]*)$/.exec(text.trim());
    const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
    if (!m || unit === undefined) return value.report(`${JSON.stringify(text)} is not a size (write 65536, 64KiB or 1MiB)`);
    bytes = Number(m[1]) * unit;
  }
  if (bytes === undefined) return undefined;
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > max) return value.report(`${value.display()} must be a whole number of bytes from ${minText} to ${maxText}`);
  return bytes;
}

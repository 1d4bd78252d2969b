// Which kind of config a YAML file is, a CA's or a sidecar's, by its top-level keys: `check`
// picks the checks with it, and `run` / `ca serve` refuse the other kind in one line instead
// of listing each of its keys as unknown.

import type { YamlValue } from './yaml-value.js';

export type ConfigKind = 'ca' | 'sidecar';

/** Keys only a CA config has; `listen`, `log` and `trustDomain` belong to both. */
const CA_ONLY_KEYS = ['dir', 'serverNames', 'maxTtl', 'defaultTtl', 'rateLimit'];
/** Keys only a sidecar config has. */
const SIDECAR_ONLY_KEYS = ['service', 'identity', 'inbound', 'outbound'];

/**
 * A sidecar config names its `service`; a CA config has none and has `dir` (or another CA-only
 * key) at the top. Anything else is checked as a sidecar config, the common case, so the
 * issues say what a sidecar config lacks.
 */
export function detectConfigKind(root: YamlValue | undefined): ConfigKind {
  if (!root || root.peek('service')) return 'sidecar';
  return CA_ONLY_KEYS.some((key) => root.peek(key)) ? 'ca' : 'sidecar';
}

/**
 * The one issue for a config of the other kind than `expected` (undefined when it is not
 * plainly the other kind), blamed at the whole file.
 */
export function otherKindMessage(root: YamlValue | undefined, expected: ConfigKind): string | undefined {
  if (!root) return undefined;
  if (expected === 'sidecar' && detectConfigKind(root) === 'ca') {
    return `this is a CA config (it has ${CA_ONLY_KEYS.filter((key) => root.peek(key)).join(', ')} and no service): run it with "meshcar ca serve --config FILE"`;
  }
  const sidecarKeys = SIDECAR_ONLY_KEYS.filter((key) => root.peek(key));
  if (expected === 'ca' && sidecarKeys.length > 0 && detectConfigKind(root) === 'sidecar') {
    return `this is a sidecar config (it has ${sidecarKeys.join(', ')}): run it with "meshcar run --config FILE"`;
  }
  return undefined;
}

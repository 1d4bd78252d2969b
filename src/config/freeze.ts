// Deep freezing and redacting of loaded configs: a config is shared by every part of the
// sidecar, so no part may change it behind the others' backs; a reload builds a new one.

/** Freezes `value` and everything reachable from it, and returns it typed as deeply read-only. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}

/**
 * A plain, mutable, JSON-able copy for `/config` and logs. Configs hold no inline secrets
 * today (the join token is a file path, not the token), so nothing needs replacing yet;
 * a key added later that holds a secret belongs in SECRET_KEYS.
 */
export function redactConfig<T extends object>(config: T): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config, (key, value: unknown) => (SECRET_KEYS.has(key) ? '[redacted]' : value))) as Record<string, unknown>;
}

const SECRET_KEYS: ReadonlySet<string> = new Set<string>([]);

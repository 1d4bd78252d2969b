// OpenAPI 3.0 schemas are JSON Schema draft-04 in one respect Ajv (draft-07) refuses:
// `exclusiveMinimum: true` / `exclusiveMaximum: true` are flags on `minimum` / `maximum`.
// They are rewritten once, at load, to draft-07's numbers, so a valid 3.0 spec compiles.
// (`nullable` Ajv knows; unknown formats such as int32 are annotations.)

export function draft07Bounds(root: unknown): void {
  const seen = new Set<object>();
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    const schema = node as Record<string, unknown>;
    for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
      if (typeof schema[flag] !== 'boolean') continue;
      if (schema[flag] === true && typeof schema[bound] === 'number') {
        schema[flag] = schema[bound];
        delete schema[bound];
      } else delete schema[flag];
    }
    for (const value of Object.values(schema)) walk(value);
  };
  walk(root);
}

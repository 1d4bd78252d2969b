// What a schema lets a value be, read the way Ajv applies it: the schema's own `type` and that
// of every subschema the value may have to match (allOf, anyOf, oneOf, then, else), for Ajv
// coerces a parameter's text to the types it meets there as well. Not `not` or `if`: their
// types say what the value is not, or test it (`not: {type: integer}` admits `1.5`, which read
// as an integer's text would be refused). Read at the top alone,
// `allOf: [{$ref: Page}]` (Page `type: integer`) was no number to the decimal-text rule, and
// `?page=0b1` passed as 1; an array under allOf was no array, and `?t=a&t=b` was refused. Every
// reading of a parameter's shape (number, array, object) goes through typesOf.

/** Keywords whose subschemas the value may have to match, as well as the schema holding them. */
const SAME_VALUE = ['allOf', 'anyOf', 'oneOf', 'then', 'else'] as const;

/** Keywords whose subschemas are applied to an array's items (draft-07 and 2020-12). */
const ITEMS = ['items', 'prefixItems', 'additionalItems', 'contains'] as const;

/** The schema and every subschema the value may have to match (through the keywords `through`); each once (a dereferenced spec may loop). */
export function sameValueSchemas(schema: unknown, through: readonly string[] = SAME_VALUE): Array<Record<string, unknown>> {
  const found: Array<Record<string, unknown>> = [];
  const seen = new Set<object>();
  const pending: unknown[] = [schema];
  // bounded: each schema object is taken once, and a document holds finitely many
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== 'object' || Array.isArray(node) || seen.has(node)) continue;
    seen.add(node);
    const record = node as Record<string, unknown>;
    found.push(record);
    for (const keyword of through) {
      const sub = record[keyword];
      if (Array.isArray(sub)) pending.push(...sub);
      else pending.push(sub);
    }
  }
  return found;
}

/** Every type named for the value (`type: x` or `type: [x, y]`) by the schema or a subschema applied to it. */
export function typesOf(schema: unknown): Set<string> {
  const types = new Set<string>();
  for (const node of sameValueSchemas(schema)) {
    for (const type of Array.isArray(node.type) ? node.type : [node.type]) if (typeof type === 'string') types.add(type);
  }
  return types;
}

/** Every type named for an array's items, by any of the schemas applied to the array. */
export function itemTypesOf(schema: unknown): Set<string> {
  const types = new Set<string>();
  for (const node of sameValueSchemas(schema)) {
    for (const keyword of ITEMS) {
      const sub = node[keyword];
      for (const item of Array.isArray(sub) ? sub : [sub]) for (const type of typesOf(item)) types.add(type);
    }
  }
  return types;
}

// `uniqueItems` in linear time. Ajv compares every pair of items with a deep-equal unless all
// are plain scalars: 20,000 distinct objects in a 230 KB body held the event loop 17 s, and a
// 1 MiB body would take minutes. Here each item is written once in a canonical form (object
// keys sorted; equal numbers such as 1 and 1.0 the same, as JSON Schema's equality wants) and
// looked up in a Set. Items are JSON values (a parsed body, coerced parameters); nesting is
// bounded by the body check's depth limit (json-body.ts).

import type { Ajv } from 'ajv';

/** A JSON value as one string: two values are JSON Schema-equal exactly when these are equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

interface UniqueItemsCheck {
  (unique: boolean, items: unknown[]): boolean;
  errors?: Array<{ keyword: string; message: string; params: Record<string, unknown> }>;
}

/** Replaces Ajv's uniqueItems with the linear check, with Ajv's own message. */
export function linearUniqueItems(ajv: Ajv): void {
  const check: UniqueItemsCheck = (unique, items) => {
    if (!unique) return true;
    const seen = new Map<string, number>();
    for (let i = 0; i < items.length; i++) {
      const key = canonical(items[i]);
      const first = seen.get(key);
      if (first !== undefined) {
        check.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${first} and ${i} are identical)`, params: { i: first, j: i } }];
        return false;
      }
      seen.set(key, i);
    }
    return true;
  };
  ajv.removeKeyword('uniqueItems');
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: check });
}

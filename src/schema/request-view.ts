// A schema as a request is held to it. OpenAPI 3.0 (Schema Object, readOnly): a property marked
// readOnly is sent in responses only, and its place in `required` applies to responses alone: a
// body without the server-assigned `id` was refused (`body/id: is required`). The view drops
// such names from `required` (in nested objects and $ref'd schemas too), and marks each
// `format: int64` for the exact range check (int64-range.ts). $refs are dereferenced at load
// into shared objects: the view is a copy, made once per shared schema (the
// spec's memo), so the document and any other use of it are left as written.

import { INT64_KEYWORD } from './int64-range.js';
import { sameValueSchemas } from './schema-shape.js';

/** `schema` itself when nothing in it differs for a request, else its request copy (memo: one per spec, shared across its operations). */
export function requestView(schema: unknown, memo: WeakMap<object, unknown>): unknown {
  return differsForRequests(schema) ? copy(schema, memo) : schema;
}

/** Whether the schema holds a readOnly property or an int64 anywhere (a walk over each object once). */
function differsForRequests(schema: unknown): boolean {
  const seen = new Set<object>();
  const pending: unknown[] = [schema];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    const record = node as Record<string, unknown>;
    if (record.readOnly === true || record.format === 'int64') return true;
    pending.push(...Object.values(record));
  }
  return false;
}

/** A deep copy with the request rules applied; a node is entered in the memo before its children, so loops copy as loops. */
function copy(node: unknown, memo: WeakMap<object, unknown>): unknown {
  if (node === null || typeof node !== 'object') return node;
  const done = memo.get(node);
  if (done !== undefined) return done;
  if (Array.isArray(node)) {
    const out: unknown[] = [];
    memo.set(node, out);
    for (const item of node) out.push(copy(item, memo));
    return out;
  }
  const original = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  memo.set(node, out);
  for (const [key, value] of Object.entries(original)) out[key] = copy(value, memo);
  if (original.format === 'int64') out[INT64_KEYWORD] = true;
  // `allOf: [{$ref: Stamped}, {required: [created]}]`: the names are read over the whole group
  const readOnly = readOnlyNames(original);
  if (readOnly.size > 0) Object.assign(out, withoutRequired(out, readOnly, new Set()));
  return out;
}

/** `node` (a copy) without `names` in its `required` nor in its allOf members' (a member that changes is cloned: it may be shared). */
function withoutRequired(node: unknown, names: ReadonlySet<string>, seen: Set<unknown>): unknown {
  if (node === null || typeof node !== 'object' || Array.isArray(node) || seen.has(node)) return node;
  seen.add(node);
  const record = node as Record<string, unknown>;
  const required = Array.isArray(record.required) ? record.required.filter((name) => !names.has(name as string)) : record.required;
  const allOf = Array.isArray(record.allOf) ? record.allOf.map((member) => withoutRequired(member, names, seen)) : record.allOf;
  const changed = (Array.isArray(required) && required.length !== (record.required as unknown[]).length) || (Array.isArray(allOf) && allOf.some((member, i) => member !== (record.allOf as unknown[])[i]));
  return changed ? { ...record, ...(required === undefined ? {} : { required }), ...(allOf === undefined ? {} : { allOf }) } : node;
}

/** The properties of an object schema (its own and its allOf members') marked readOnly, there or in an allOf member of theirs. */
function readOnlyNames(schema: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const part of sameValueSchemas(schema, ['allOf'])) {
    const properties = part.properties;
    if (properties === null || typeof properties !== 'object') continue;
    for (const [name, property] of Object.entries(properties)) {
      if (sameValueSchemas(property, ['allOf']).some((s) => s.readOnly === true)) names.add(name);
    }
  }
  return names;
}

// Which OpenAPI specs a reload changes although the config does not name another file: every
// spec is read again on each reload (reload-read.ts), so a spec file edited on disk (or a file
// it $refs) is applied, and the reload's answer names it under the key that names the file,
// as a change of the key itself is named (`inbound.openapi.spec`,
// `outbound.upstreams.payments.openapi.spec`). Without it a reload that put a new spec in force
// answered `applied: []`.

import type { Guards } from './guards.js';
import type { SchemaGuard } from './guard.js';

/** `applied` (the reload plan's key paths) with each spec whose document changed under the same file added, once. */
export function appliedWithSpecs(applied: readonly string[], running: Guards, next: Guards): readonly string[] {
  const changed: string[] = [];
  if (specChanged(running.inbound, next.inbound)) changed.push('inbound.openapi.spec');
  for (const [name, guard] of next.upstreams) {
    if (specChanged(running.upstreams.get(name), guard)) changed.push(`outbound.upstreams.${name}.openapi.spec`);
  }
  const added = changed.filter((path) => !applied.includes(path));
  return added.length === 0 ? applied : [...applied, ...added];
}

/** The same file read again into another document; a spec added, dropped or moved to another file is the plan's to name. */
function specChanged(running: SchemaGuard | undefined, next: SchemaGuard | undefined): boolean {
  if (running === undefined || next === undefined || running.spec.file !== next.spec.file) return false;
  return !sameDocument(running.spec.document, next.spec.document);
}

/**
 * Whether two dereferenced documents hold the same data, keys in the same order (a file only
 * reordered is named as changed: it was edited, and naming it costs nothing). A dereferenced document shares a $ref's
 * target among its uses: each pair of nodes is compared once, so a heavily shared schema costs
 * its size, not its size times its uses (JSON.stringify would expand every use).
 */
export function sameDocument(a: unknown, b: unknown): boolean {
  const compared = new Map<object, Set<object>>();
  const same = (x: unknown, y: unknown): boolean => {
    if (Object.is(x, y)) return true;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (x instanceof Date || y instanceof Date) return x instanceof Date && y instanceof Date && x.getTime() === y.getTime();
    let pairs = compared.get(x);
    if (pairs?.has(y)) return true;
    if (pairs === undefined) compared.set(x, (pairs = new Set()));
    pairs.add(y);
    const xKeys = Object.keys(x);
    const yKeys = Object.keys(y);
    if (xKeys.length !== yKeys.length) return false;
    for (let i = 0; i < xKeys.length; i++) {
      const key = xKeys[i] as string;
      if (key !== yKeys[i] || !same((x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key])) return false;
    }
    return true;
  };
  return same(a, b);
}

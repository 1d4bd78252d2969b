// One configured spec as the data plane holds it: the compiled spec, the mode and the body
// limit. Built (and every spec loaded) before a start or a reload takes effect, so a broken
// spec stops the start or leaves the running guard in place. The loader and compiler
// (swagger-parser in the spec worker, Ajv: about 11 MB and 100 ms) are loaded only when a spec
// is: the worker when one is read, Ajv at the first compile (compilers.ts).

import type { OpenApiConfig, SchemaMode } from '../config/openapi-config.js';
import { CompiledSpec } from './spec.js';
import { BodyBudget, DEFAULT_MAX_BUFFERED } from './body-budget.js';

export interface SchemaGuard {
  readonly spec: CompiledSpec;
  readonly mode: SchemaMode;
  readonly maxBodySize: number;
  /** The bodies this guard holds at once (body-budget.ts). */
  readonly budget: BodyBudget;
}

export async function loadGuard(config: OpenApiConfig): Promise<SchemaGuard> {
  return guardOf(config, await CompiledSpec.load(config.spec));
}

/** The guard of a compiled spec, with the settings `config` gives it. */
export function guardOf(config: OpenApiConfig, spec: CompiledSpec): SchemaGuard {
  return { spec, mode: config.mode, maxBodySize: config.maxBodySize, budget: new BodyBudget(config.maxBuffered ?? DEFAULT_MAX_BUFFERED, config.maxBodySize) };
}

/** `/orders?x=1` → ['/orders', 'x=1']. */
export function splitTarget(target: string): [path: string, query: string] {
  const q = target.indexOf('?');
  return q === -1 ? [target, ''] : [target.slice(0, q), target.slice(q + 1)];
}

// Every OpenAPI guard a sidecar config asks for (inbound, and per outbound upstream), loaded
// together: all of them or an error naming the key and the spec's JSON pointer, so a start or
// a reload never runs half on a new spec. With workers > 1 the primary loads them and the
// workers compile the documents it sends (specDocuments / guardsFromDocuments), so every
// process runs the spec the primary checked even if the file changes meanwhile.

import type { Logger } from 'pino';
import type { SidecarConfig } from '../config/sidecar-config.js';
import type { OpenApiConfig } from '../config/openapi-config.js';
import { describeError, MeshcarError } from '../errors.js';
import { guardOf, type SchemaGuard } from './guard.js';
// imported with the sidecar, not when a spec is first named: a module that failed to load (a
// reload at the open-files limit) would stay failed until a restart; its packages (Ajv) are
// required on first use, compilers.ts
import { CompiledSpec } from './spec.js';
import { oncePerSpec } from './once-per-spec.js';
import type { OpenApiDocument } from './spec-document.js';

/** The parts of a sidecar config that name specs: all this module reads of it. */
type SpecHolders = Pick<SidecarConfig, 'inbound' | 'outbound'>;

export interface Guards {
  readonly inbound: SchemaGuard | undefined;
  /** By upstream name (lower-case). */
  readonly upstreams: ReadonlyMap<string, SchemaGuard>;
}

/** `inbound.openapi.spec: /srv/orders.openapi.yaml#/paths/...: Missing $ref pointer ...` */
function load(key: string, config: OpenApiConfig, specOf: (path: string) => Promise<CompiledSpec>): Promise<SchemaGuard> {
  // a compiled spec is shared by the guards naming its file; each keeps its own mode and body budget
  return specOf(config.spec).then(
    (spec) => guardOf(config, spec),
    (err: unknown) => {
      throw new MeshcarError('config_invalid', `${key}.spec: ${describeError(err)}`, { cause: err });
    },
  );
}

/** Whether the config names an OpenAPI spec anywhere (loadGuards has one to compile). */
export function namesSpecs(config: SpecHolders): boolean {
  return config.inbound?.openapi !== undefined || (config.outbound?.upstreams ?? []).some((u) => u.openapi !== undefined);
}

export async function loadGuards(config: SpecHolders): Promise<Guards> {
  const inboundSpec = config.inbound?.openapi;
  const upstreams = (config.outbound?.upstreams ?? []).filter((u) => u.openapi !== undefined);
  const specOf = oncePerSpec((path) => CompiledSpec.load(path));
  const [inbound, ...perUpstream] = await Promise.all([
    inboundSpec ? load('inbound.openapi', inboundSpec, specOf) : undefined,
    ...upstreams.map((u) => load(`outbound.upstreams.${u.name}.openapi`, u.openapi as OpenApiConfig, specOf)),
  ]);
  return { inbound, upstreams: new Map(upstreams.map((u, i) => [u.name, perUpstream[i] as SchemaGuard])) };
}

/** The dereferenced documents behind a set of guards, as plain data (they cross the workers' IPC channel). */
export interface SpecDocuments {
  readonly inbound?: OpenApiDocument;
  /** By the same upstream names as Guards.upstreams. */
  readonly upstreams: Readonly<Record<string, OpenApiDocument>>;
}

export function specDocuments(guards: Guards): SpecDocuments {
  const upstreams = Object.fromEntries([...guards.upstreams].map(([name, guard]) => [name, guard.spec.document]));
  return { ...(guards.inbound ? { inbound: guards.inbound.spec.document } : {}), upstreams };
}

/** The guards `config` asks for, compiled from documents the primary loaded; a missing one is an error (never a read of the file). */
export async function guardsFromDocuments(config: SpecHolders, documents: SpecDocuments): Promise<Guards> {
  const inboundSpec = config.inbound?.openapi;
  const upstreams = (config.outbound?.upstreams ?? []).filter((u) => u.openapi !== undefined);
  if (!inboundSpec && upstreams.length === 0) return { inbound: undefined, upstreams: new Map() };
  // one compilation per spec file (upstreams naming one spec share it; each arrives as its own copy)
  const compileOnce = oncePerSpec((path: string, doc: OpenApiDocument) => CompiledSpec.compile(path, doc));
  const compile = async (key: string, openapi: OpenApiConfig, doc: OpenApiDocument | undefined): Promise<SchemaGuard> => {
    if (doc === undefined) throw new MeshcarError('internal', `${key}.spec: the primary sent no document for ${openapi.spec}`);
    return guardOf(openapi, await compileOnce(openapi.spec, doc));
  };
  const upstreamGuards: Array<readonly [string, SchemaGuard]> = [];
  for (const u of upstreams) upstreamGuards.push([u.name, await compile(`outbound.upstreams.${u.name}.openapi`, u.openapi as OpenApiConfig, documents.upstreams[u.name])]);
  return {
    inbound: inboundSpec ? await compile('inbound.openapi', inboundSpec, documents.inbound) : undefined,
    upstreams: new Map(upstreamGuards),
  };
}

/**
 * Logs, at warn, the patterns of the guards' specs that only the backtracking regex engine can
 * run (backtracking-patterns.ts; the first 20 of each spec, then how many in all): where the
 * specs are read (a start, a reload), not in every worker.
 */
export function warnBacktrackingPatterns(guards: Guards, logger: Logger): void {
  const all = [...(guards.inbound ? [['inbound.openapi', guards.inbound] as const] : []), ...[...guards.upstreams].map(([name, guard]) => [`outbound.upstreams.${name}.openapi`, guard] as const)];
  for (const [key, guard] of all) {
    const { listed, total } = guard.spec.backtracking;
    for (const { pointer, pattern } of listed) {
      logger.warn({ setting: key, spec: guard.spec.file, pointer, pattern }, `${key}: ${guard.spec.file}#${pointer}: ${BACKTRACKING_WORDS}; if it repeats within a repetition, a caller's input can hold the sidecar for seconds: rewrite it`);
    }
    if (total > listed.length) logger.warn({ setting: key, spec: guard.spec.file, total }, `${key}: ${guard.spec.file}: ${total - listed.length} more patterns of this kind (${total} in all; meshcar doctor names the first)`);
  }
}

/** Why a pattern is named, in the log and in doctor's warning. */
export const BACKTRACKING_WORDS = "the pattern can only run on the backtracking regex engine (a lookaround, a backreference, a unicode property, or a counted repetition past about {1,16}: V8's linear-time engine takes none of them)";

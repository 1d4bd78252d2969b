// Every OpenAPI guard a sidecar config asks for (inbound, and per outbound upstream), loaded
// together: all of them or an error naming the key and the spec's JSON pointer, so a start or
// a reload never runs half on a new spec.

import type { SidecarConfig } from '../config/sidecar-config.js';
import type { OpenApiConfig } from '../config/openapi-config.js';
import { describeError, MeshcarError } from '../errors.js';
import { loadGuard, type SchemaGuard } from './guard.js';

export interface Guards {
  readonly inbound: SchemaGuard | undefined;
  /** By upstream name (lower-case). */
  readonly upstreams: ReadonlyMap<string, SchemaGuard>;
}

/** `inbound.openapi.spec: /srv/orders.openapi.yaml#/paths/...: Missing $ref pointer ...` */
function load(key: string, config: OpenApiConfig): Promise<SchemaGuard> {
  return loadGuard(config).catch((err: unknown) => {
    throw new MeshcarError('config_invalid', `${key}.spec: ${describeError(err)}`, { cause: err });
  });
}

export async function loadGuards(config: SidecarConfig): Promise<Guards> {
  const inboundSpec = config.inbound?.openapi;
  const upstreams = (config.outbound?.upstreams ?? []).filter((u) => u.openapi !== undefined);
  const [inbound, ...perUpstream] = await Promise.all([
    inboundSpec ? load('inbound.openapi', inboundSpec) : undefined,
    ...upstreams.map((u) => load(`outbound.upstreams.${u.name}.openapi`, u.openapi as OpenApiConfig)),
  ]);
  return { inbound, upstreams: new Map(upstreams.map((u, i) => [u.name, perUpstream[i] as SchemaGuard])) };
}

// Every OpenAPI guard a sidecar config asks for (inbound, and per outbound upstream), loaded
// together: all of them or a SpecError, so a start or a reload never runs half on a new spec.

import type { SidecarConfig } from '../config/sidecar-config.js';
import { loadGuard, type SchemaGuard } from './guard.js';

export interface Guards {
  readonly inbound: SchemaGuard | undefined;
  /** By upstream name (lower-case). */
  readonly upstreams: ReadonlyMap<string, SchemaGuard>;
}

export async function loadGuards(config: SidecarConfig): Promise<Guards> {
  const inboundSpec = config.inbound?.openapi;
  const upstreams = (config.outbound?.upstreams ?? []).filter((u) => u.openapi !== undefined);
  const [inbound, ...perUpstream] = await Promise.all([inboundSpec ? loadGuard(inboundSpec) : undefined, ...upstreams.map((u) => loadGuard(u.openapi!))]);
  return { inbound, upstreams: new Map(upstreams.map((u, i) => [u.name, perUpstream[i] as SchemaGuard])) };
}

// GET /endpoints: the API inventory the sidecar has seen, as JSON rows or (?format=openapi) as
// an OpenAPI 3.1 document with the configured specs' operations. With workers > 1 the traffic
// was seen by the workers, and their inventories are merged.

import { MeshcarError } from '../errors.js';
import type { Guards } from '../schema/guards.js';
import type { WorkerCluster } from '../workers/contract.js';
import { discoveryDocument } from './discovery.js';
import type { TrafficMetrics } from './traffic-metrics.js';

export interface EndpointsSources {
  /** The service name, the document's title. */
  readonly service: string;
  /** This process's traffic (workers = 1). */
  readonly traffic: TrafficMetrics;
  /** The OpenAPI guards in force, for the documented operations. */
  readonly guards: Guards;
  readonly cluster: WorkerCluster | undefined;
}

export async function endpointsView(format: string | null, sources: EndpointsSources): Promise<unknown> {
  const { cluster, traffic, guards } = sources;
  if (format === null || format === 'json') return { endpoints: cluster ? (await cluster.endpoints()).endpoints : traffic.endpoints() };
  if (format !== 'openapi') throw new MeshcarError('bad_request', `unknown format ${JSON.stringify(format)}: use format=openapi, or leave it out for JSON rows`);
  // each operation by the route its calls are counted under (its template under the spec's base path)
  const operations = (guard: Guards['inbound']) => guard?.spec.routes().map(({ method, route }) => ({ method, template: route }));
  const upstreams = new Map([...guards.upstreams].map(([name, guard]) => [name, operations(guard) ?? []] as const));
  const inbound = operations(guards.inbound);
  const rows = cluster ? (await cluster.endpoints()).discovery : traffic.discoveryRows();
  return discoveryDocument(sources.service, rows, { ...(inbound ? { inbound } : {}), upstreams });
}

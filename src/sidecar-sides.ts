// The inbound and outbound sides a sidecar runs in its own process (workers: 1; with more, each
// worker's sidecar does the same): each made from its slice of the config, with the protocol
// settings (http2.codec, http1.appClient), the OpenAPI guards in force and the shared traffic
// observer. The composition root (sidecar.ts) binds them and closes them.

import type { SidecarConfig } from './config/sidecar-config.js';
import { DEFAULT_INBOUND_LIMITS } from './config/inbound-config.js';
import type { Logger } from 'pino';
import type { WorkloadIdentity } from './identity/workload-identity.js';
import type { TrafficObserver } from './metrics/traffic.js';
import { createInbound, type Inbound } from './inbound/index.js';
import { createOutbound, type Outbound } from './outbound/index.js';
import type { Guards } from './schema/guards.js';

type InboundSlice = NonNullable<SidecarConfig['inbound']>;
type OutboundSlice = NonNullable<SidecarConfig['outbound']>;

export function inboundSide(config: SidecarConfig, inbound: InboundSlice, identity: WorkloadIdentity, guards: Guards, logger: Logger, observer: TrafficObserver, workers = 1): Inbound {
  return createInbound({ config: appShare(inbound, workers), identity, trustDomain: config.trustDomain, ownSpiffeId: config.spiffeId, logger: logger.child({ component: 'inbound' }), observer, codec: config.http2.codec, appClient: config.http1.appClient, ...(guards.inbound ? { schema: guards.inbound } : {}) });
}

/**
 * One worker's part of the app's connections: the app is one process whatever the sidecar's
 * workers, and `maxAppConnections` is what it can take (N workers each keeping the whole limit
 * opened up to N times it). At least one each: a worker with none could not forward.
 */
function appShare(inbound: InboundSlice, workers: number): InboundSlice {
  if (workers <= 1) return inbound;
  const limits = inbound.limits ?? DEFAULT_INBOUND_LIMITS;
  return { ...inbound, limits: { ...limits, maxAppConnections: Math.max(1, Math.floor(limits.maxAppConnections / workers)) } };
}

export function outboundSide(config: SidecarConfig, outbound: OutboundSlice, identity: WorkloadIdentity, guards: Guards, logger: Logger, observer: TrafficObserver): Outbound {
  const tuning = outbound.dnsRefreshMs !== undefined ? { options: { dnsRefreshMs: outbound.dnsRefreshMs } } : {};
  return createOutbound({ config: outbound, identity, logger: logger.child({ component: 'outbound' }), observer, codec: config.http2.codec, schemas: guards.upstreams, ...tuning });
}

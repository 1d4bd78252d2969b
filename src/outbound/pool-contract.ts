// What an upstream pool (upstream-pool.ts) is made with and hands back: its settings and
// dependencies (from the outbound, index.ts), the stream it opens and the requester it calls
// (attempt.ts). Types only, so the pool's neighbours can name them without its class.

import type { Logger } from 'pino';
import type { MeshcarError } from '../errors.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { DialBudgets } from './dial-budgets.js';
import type { LookupAll, UpstreamEndpoint } from './endpoints.js';
import type { SessionPolicy } from './session-lifecycle.js';
import type { UpstreamStream } from './upstream-stream.js';

export interface PoolSettings extends SessionPolicy {
  readonly dnsRefreshMs: number;
  /** How long an endpoint that failed to connect is skipped. */
  readonly endpointBackoffMs: number;
  readonly lookup?: LookupAll;
}

export interface PoolDependencies {
  readonly identity: WorkloadIdentity;
  readonly logger: Logger;
  readonly observer: TrafficObserver;
  readonly settings: PoolSettings;
  /** Which HTTP/2 codec carries the sessions: src/h2 or http2-wrapper + core http2 (the outbound passes its own, defaulted there). */
  readonly codec: 'meshcar' | 'node';
  /** What failed dials may cost per endpoint (dial-budgets.ts), shared by every pool of the outbound. */
  readonly budgets: DialBudgets;
}

export interface OpenedStream {
  readonly stream: UpstreamStream;
  readonly endpoint: UpstreamEndpoint;
}

/** Who asked for a stream: an object with methods, so a request passes no closures (attempt.ts). */
export interface StreamRequester {
  streamOpened(stream: UpstreamStream, endpoint: UpstreamEndpoint): void;
  streamFailed(err: MeshcarError): void;
}

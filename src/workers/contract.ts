// What the composition root (src/sidecar.ts) asks of the workers when workers > 1: start them
// with the identity, know whether all listen, reload, drain, and collect their metrics and
// inventories. The primary's WorkerPool (primary.ts) is the one implementation.

import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { ReloadResult } from '../reload-outcome.js';
import type { WorkerEndpoints } from './messages.js';

/** The workers (workers > 1) as the primary sees them: they carry the traffic (src/workers/primary.ts). */
export interface WorkerCluster {
  /** Starts the workers and hands them the identity, now and on every rotation; resolves once every one listens. */
  start(identity: WorkloadIdentity): Promise<{ inbound?: { host: string; port: number }; outbound?: { host: string; port: number } }>;
  /** Every worker listens now (false while one is restarted). */
  listening(): boolean;
  /** Tells every worker to reload the file the primary has just checked. */
  reload(): Promise<ReloadResult>;
  metrics(accept: string | undefined): Promise<{ contentType: string; body: string }>;
  /** The workers' endpoint inventories, merged. */
  endpoints(): Promise<WorkerEndpoints>;
  /** GET /workers: each worker's pid, state, served serial and request count. */
  status(): Promise<unknown>;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

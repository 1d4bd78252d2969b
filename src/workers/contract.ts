// What the composition root (src/sidecar.ts) asks of the workers when workers > 1: start them
// with the identity and the config, know whether all listen, reload, drain, and collect their
// metrics and inventories. The primary's WorkerPool (primary.ts) is the one implementation.

import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import type { SpecDocuments } from '../schema/guards.js';
import type { WorkerEndpoints } from './messages.js';
import type { WorkerUpstreams } from './cluster-views.js';
import type { RoundOutcome } from './reload-round.js';
import type { TlsFailureEntry } from '../tls-failures/failure-log.js';

/** A config the primary has checked, with the OpenAPI documents it loaded for it: what the workers run, as is. */
export interface ConfigToRun {
  readonly config: SidecarConfig;
  readonly specs: SpecDocuments;
}

/** The workers (workers > 1) as the primary sees them: they carry the traffic (src/workers/primary.ts). */
export interface WorkerCluster {
  /** Starts the workers on `config` (generation 1) and hands them the identity, now and on every rotation; resolves once every one listens. */
  start(identity: WorkloadIdentity, config: ConfigToRun): Promise<{ inbound?: { host: string; port: number }; outbound?: { host: string; port: number } }>;
  /** Every worker listens now (false while one is restarted). */
  listening(): boolean;
  /** The config generation the workers run (or start on). */
  generation(): number;
  /** Every worker runs `config` or none does (reload-round.ts); the outcome says which, honestly. `primaryMs`: what reading and preparing it took the primary. */
  reload(config: ConfigToRun, primaryMs?: number): Promise<RoundOutcome>;
  metrics(accept: string | undefined): Promise<{ contentType: string; body: string }>;
  /** metrics.requests turned off: the counts of workers gone in these families (and /endpoints) are dropped too. */
  forgetRequestCounts(families: ReadonlySet<string>): void;
  /** The workers' endpoint inventories, merged. */
  endpoints(): Promise<WorkerEndpoints>;
  /** GET /debug/tls: the failed handshakes the workers (where handshakes happen) recorded last, newest first. */
  tlsFailures(): Promise<TlsFailureEntry[]>;
  /** GET /upstreams: each worker's own view of its upstreams (upstreams-view in cluster-views.ts). */
  upstreams(): Promise<WorkerUpstreams>;
  /** GET /workers: the primary's config generation; each worker's pid, state, served serial, generation and request count. */
  status(): Promise<unknown>;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

// The IPC messages between the primary and its workers (workers > 1), typed, with one guard
// each way. The primary owns the identity and sends each SVID as PEM text (the worker checks
// it again and swaps it in); it also owns the config: a worker never reads the config file or
// a spec, it runs the generation the primary sends (at start, then by a two-phase reload:
// prepare, then commit or abort). A worker says when it listens and answers the primary's asks.
// The primary takes a message only with the fields its type has: a worker's bug must not
// reach the primary's handlers as a TypeError (which would end the primary and every worker).

import type client from 'prom-client';
import type { SvidMaterial } from '../identity/svid.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import type { SpecDocuments } from '../schema/guards.js';
import type { EndpointView } from '../metrics/traffic-metrics.js';
import type { DiscoveryRow } from '../metrics/discovery.js';
import type { TlsFailureEntry } from '../tls-failures/failure-log.js';
import type { UpstreamView } from '../outbound/upstreams-view.js';
import type { ListenPorts } from './shared-ports.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** One config as the primary checked it: what a worker runs, numbered so an operator can see every worker agrees. */
export interface WorkerConfig {
  /** 1 at start, one more for every reload the primary applies. */
  readonly generation: number;
  /** The effective config (the primary's /config), JSON-safe. */
  readonly config: SidecarConfig;
  /** The OpenAPI documents the primary loaded for it. */
  readonly specs: SpecDocuments;
}

/**
 * What the primary asks of a worker and the worker answers with the same id. A reload is
 * `prepare` (build everything that can fail, apply nothing; the answer is its generation)
 * then `commit` (swap it in; cannot fail) or the `meshcar:abort` message.
 */
export type Ask =
  | { readonly ask: 'prepare'; readonly next: WorkerConfig }
  | { readonly ask: 'commit'; readonly generation: number }
  | { readonly ask: 'status' }
  /** The primary's health check (health-checks.ts): answered at once by a worker whose event loop turns. */
  | { readonly ask: 'ping' }
  | { readonly ask: 'endpoints' }
  /** The worker's recent failed TLS handshakes (GET /debug/tls): the handshakes happen in the workers. */
  | { readonly ask: 'tls' }
  /** The worker's outbound upstreams, addresses and their state (GET /upstreams): each worker has its own pools. */
  | { readonly ask: 'upstreams' }
  | { readonly ask: 'metrics' };

/** A worker's registry as prom-client's aggregation takes it (Registry.getMetricsAsJSON()). */
export type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

export interface WorkerStatus {
  readonly pid: number;
  /** Serial of the SVID the worker's listeners present now (null before the first arrives). */
  readonly serial: string | null;
  /** Requests this worker finished since it started (counted with or without metrics.requests). */
  readonly requests: number;
  /** The config generation it runs (null before the first config arrives). */
  readonly generation: number | null;
}

export interface WorkerEndpoints {
  readonly endpoints: readonly EndpointView[];
  readonly discovery: readonly DiscoveryRow[];
}

export interface Answers {
  prepare: { readonly generation: number };
  commit: { readonly generation: number };
  status: WorkerStatus;
  ping: true;
  endpoints: WorkerEndpoints;
  metrics: MetricsJson;
  tls: readonly TlsFailureEntry[];
  upstreams: readonly UpstreamView[];
}

export type ToWorker =
  | { readonly type: 'meshcar:svid'; readonly svid: SvidMaterial }
  | { readonly type: 'meshcar:drain'; readonly timeoutMs: number }
  /** The config to start with (sent once, after hello). */
  /** `ports`: where the config says port 0, the port to bind instead (shared-ports.ts). */
  | { readonly type: 'meshcar:config'; readonly current: WorkerConfig; readonly ports: ListenPorts }
  /** Drop what was prepared for this generation: some worker could not prepare it. */
  | { readonly type: 'meshcar:abort'; readonly generation: number }
  | ({ readonly type: 'meshcar:ask'; readonly id: number } & Ask);

export type ToPrimary =
  /** The worker's message listener is in place: the primary may send the SVID. */
  | { readonly type: 'meshcar:hello' }
  | { readonly type: 'meshcar:listening'; readonly inbound?: Address; readonly outbound?: Address }
  /** Start-up failed (config, SVID, a port): the reason, before the worker exits 1. */
  | { readonly type: 'meshcar:failed'; readonly message: string; readonly code?: string }
  | { readonly type: 'meshcar:answer'; readonly id: number; readonly answer?: unknown; readonly error?: string };

function isTyped(message: unknown): message is { type: string } {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('meshcar:');
}

/** A message of ours (type meshcar:...): anything else on the channel is not for this code. */
export function isToWorker(message: unknown): message is ToWorker {
  return isTyped(message);
}

/** A listener's address as a worker reports it: a host and a TCP port. */
function isAddress(value: unknown): boolean {
  if (value === undefined) return true;
  const { host, port } = (typeof value === 'object' && value !== null ? value : {}) as { host?: unknown; port?: unknown };
  return typeof host === 'string' && Number.isInteger(port) && (port as number) >= 0 && (port as number) <= 65535;
}

/** One of ours (meshcar:...) with the fields its type has: the primary reads nothing else from a worker. */
export function isToPrimary(message: unknown): message is ToPrimary {
  if (!isTyped(message)) return false;
  const m = message as { type: string } & Record<string, unknown>;
  switch (m.type) {
    case 'meshcar:hello':
      return true;
    case 'meshcar:listening':
      return isAddress(m.inbound) && isAddress(m.outbound);
    case 'meshcar:failed':
      return typeof m.message === 'string' && (m.code === undefined || typeof m.code === 'string');
    case 'meshcar:answer':
      // the answer itself is checked against what was asked (answer-shapes.ts)
      return Number.isSafeInteger(m.id) && (m.error === undefined || typeof m.error === 'string');
    default:
      return false;
  }
}

/** Typed as ours (meshcar:...), whatever its fields: one isToPrimary refuses is a worker's bug, logged. */
export const isOurs = isTyped;

/** The SVID as a meshcar:svid message carries it: the three PEM fields only, nothing else of the object. */
export function svidMaterial(svid: SvidMaterial): SvidMaterial {
  return { privateKeyPem: svid.privateKeyPem, chainPem: svid.chainPem, bundlePem: svid.bundlePem };
}

/** Set by the primary in each worker's environment: how many workers it runs (fixed until a restart). */
export const WORKER_COUNT_ENV = 'MESHCAR_WORKER_COUNT';

/** In a worker: how many workers share the sidecar's work (1 if not told). */
export function workersAround(): number {
  const count = Number(process.env[WORKER_COUNT_ENV]);
  return Number.isInteger(count) && count > 0 ? count : 1;
}

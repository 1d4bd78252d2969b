// The IPC messages between the primary and its workers (workers > 1), typed, with one guard
// each way. The primary owns the identity and sends each SVID as PEM text (the worker checks
// it again and swaps it in); a worker says when it listens and answers the primary's asks.

import type client from 'prom-client';
import type { SvidMaterial } from '../identity/svid.js';
import type { ReloadResult } from '../reload-outcome.js';
import type { EndpointView } from '../metrics/traffic-metrics.js';
import type { DiscoveryRow } from '../metrics/discovery.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** What the primary asks of a worker and the worker answers with the same id. */
export type Ask = { readonly ask: 'reload' } | { readonly ask: 'status' } | { readonly ask: 'endpoints' } | { readonly ask: 'metrics' };

/** A worker's registry as prom-client's aggregation takes it (Registry.getMetricsAsJSON()). */
export type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

export interface WorkerStatus {
  readonly pid: number;
  /** Serial of the SVID the worker's listeners present now (null before the first arrives). */
  readonly serial: string | null;
  /** Requests this worker finished (the sum of its meshcar_requests_total). */
  readonly requests: number;
}

export interface WorkerEndpoints {
  readonly endpoints: readonly EndpointView[];
  readonly discovery: readonly DiscoveryRow[];
}

export interface Answers {
  reload: ReloadResult;
  status: WorkerStatus;
  endpoints: WorkerEndpoints;
  metrics: MetricsJson;
}

export type ToWorker =
  | { readonly type: 'meshcar:svid'; readonly svid: SvidMaterial }
  | { readonly type: 'meshcar:drain'; readonly timeoutMs: number }
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

export function isToPrimary(message: unknown): message is ToPrimary {
  return isTyped(message);
}

// The order of a sidecar's graceful shutdown (Sidecar.drain in sidecar.ts), within one drain
// timeout: the workers first (workers > 1), then the inbound side (stops accepting, finishes
// what is in flight), then the outbound side, which keeps serving the app (it may be shutting
// down too and still need its calls) until the app has been quiet for a moment, or until a
// quarter of the timeout is left, for the calls in flight to finish.

import type { Logger } from 'pino';
import type { Inbound } from './inbound/index.js';
import type { Outbound } from './outbound/index.js';
import type { WorkerCluster } from './workers/contract.js';

/** After the inbound side has drained, the outbound side stops once the app has been quiet this long. */
const OUTBOUND_QUIET_MS = 1_000;

/**
 * The part of the drain timeout kept for the outbound's wind-down (listener closed, HTTP/1.1
 * answers with `Connection: close`, GOAWAY to h2c apps) while the calls in flight finish: an
 * app that never went quiet had the whole timeout spent waiting for it, then every call in
 * flight cut at once, answered upstream or not (review: 17 cut at a 5 s timeout). A quarter of
 * the timeout, at most 5 s.
 */
function windDownReserveMs(timeoutMs: number): number {
  return Math.min(5_000, timeoutMs / 4);
}

/** What is drained; each side read when its turn comes (one a start still under way may build meanwhile). */
export interface DrainedParts {
  readonly cluster: WorkerCluster | undefined;
  inbound(): Inbound | undefined;
  outbound(): Outbound | undefined;
}

export async function drainInOrder(parts: DrainedParts, timeoutMs: number, logger: Logger): Promise<void> {
  // running time: a wall clock stepped back during the drain would stretch the quiet wait past drainTimeout
  const deadline = performance.now() + timeoutMs;
  logger.info({ timeoutMs }, 'draining');
  await parts.cluster?.drain(timeoutMs);
  await parts.inbound()?.drain(timeoutMs);
  const outbound = parts.outbound();
  if (outbound) {
    const quietUntil = deadline - windDownReserveMs(timeoutMs);
    while (performance.now() < quietUntil && (outbound.idleForMs?.() ?? OUTBOUND_QUIET_MS) < OUTBOUND_QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await outbound.drain(Math.max(0, deadline - performance.now()));
  }
}

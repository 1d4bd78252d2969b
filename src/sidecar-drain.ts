// The order of a sidecar's graceful shutdown (Sidecar.drain in sidecar.ts), within one drain
// timeout: the workers first (workers > 1), then the inbound side (stops accepting, finishes
// what is in flight), then the outbound side, which keeps serving the app (it may be shutting
// down too and still need its calls) until the app has been quiet for a moment.

import type { Logger } from 'pino';
import type { Inbound } from './inbound/index.js';
import type { Outbound } from './outbound/index.js';
import type { WorkerCluster } from './workers/contract.js';

/** After the inbound side has drained, the outbound side stops once the app has been quiet this long. */
const OUTBOUND_QUIET_MS = 1_000;

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
    while (performance.now() < deadline && (outbound.idleForMs?.() ?? OUTBOUND_QUIET_MS) < OUTBOUND_QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await outbound.drain(Math.max(0, deadline - performance.now()));
  }
}

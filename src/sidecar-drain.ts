// The order of a sidecar's graceful shutdown (Sidecar.drain in sidecar.ts), within one drain
// timeout: the workers first (workers > 1), then the inbound side (stops accepting, finishes
// what is in flight) while the outbound side keeps serving the app (it may be shutting down too
// and still need its calls); the outbound winds down once the inbound is done and the app has
// been quiet for a moment, or when a quarter of the timeout is left, for its calls in flight
// to finish (its listener stays open until the inbound is done: a call the inbound serves may
// need the outbound).

import type { Logger } from 'pino';
import type { Inbound } from './inbound/index.js';
import type { Outbound } from './outbound/index.js';
import type { WorkerCluster } from './workers/contract.js';

/** After the inbound side has drained, the outbound side stops once the app has been quiet this long. */
const OUTBOUND_QUIET_MS = 1_000;

/**
 * The part of the drain timeout kept for the outbound's wind-down (HTTP/1.1 answers with
 * `Connection: close`, GOAWAY to h2c apps, then the listener closed once the inbound side is
 * done) while the calls in flight finish: an
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
  const inboundDrained = parts.inbound()?.drain(timeoutMs);
  let inboundDone = inboundDrained === undefined;
  void inboundDrained?.then(
    () => (inboundDone = true),
    () => (inboundDone = true),
  );
  // the outbound serves the app while the inbound drains and until the app is quiet, but winds
  // down at quietUntil whatever holds it: waiting for the inbound first, a call held to the end
  // took the reserve too (review: 220 ms left of 2.5 s, three calls cut)
  const quietUntil = deadline - windDownReserveMs(timeoutMs);
  const appQuiet = (): boolean => (parts.outbound()?.idleForMs?.() ?? OUTBOUND_QUIET_MS) >= OUTBOUND_QUIET_MS;
  while (performance.now() < quietUntil && !(inboundDone && appQuiet())) {
    // never past quietUntil: a 100 ms step overshot a 25 ms reserve (drainTimeout 100ms)
    await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, quietUntil - performance.now()))));
  }
  if (!inboundDone) {
    // the inbound side still serves a call, which the app may answer with calls of its own
    // through the outbound: it winds down but takes them until that call is done (closing its
    // listener here refused them: review, 502 to a call 0.5 s before its drain's end)
    parts.outbound()?.windDown();
    // a failed inbound drain must not leave the outbound half done: it is reported below, once
    // the outbound's drain has run too
    await inboundDrained?.catch(() => undefined);
  }
  await Promise.all([inboundDrained, parts.outbound()?.drain(Math.max(0, deadline - performance.now()))]);
}

// Expect: 100-continue across the hop. The upstream's 100 is relayed as soon as it arrives.
// An upstream that ignores the expectation would leave an app that waits for the 100 (Node's
// client does) waiting until a timeout; RFC 9110 §10.1.1 lets a client send its body without
// it, so after a grace period with neither a 100 nor a final answer we send the 100 ourselves,
// as curl does on its own after a second (sooner when the upstream's timeout is short: the
// body must still have time to be answered).

import type { UpstreamStream } from './upstream-stream.js';
import { markContinued } from './pool-counting.js';

const CONTINUE_GRACE_MS = 1000;

/** `upstreamTimeoutMs` 0: no response-head deadline, the full grace. */
export function continueGraceMs(upstreamTimeoutMs: number): number {
  if (upstreamTimeoutMs <= 0) return CONTINUE_GRACE_MS;
  return Math.min(CONTINUE_GRACE_MS, Math.floor(upstreamTimeoutMs / 2));
}

export function expectsContinue(expect: string | undefined): boolean {
  return expect !== undefined && expect.toLowerCase() === '100-continue';
}

/** Who sends the app its 100 Continue (the forwarder's controller, src/outbound/attempt.ts). */
export interface ContinueSender {
  sendContinue(): void;
}

/** What an upstream stream relaying a 100 notes (until it is sent or no longer wanted). */
interface Pending {
  readonly app: ContinueSender;
  readonly timer: NodeJS.Timeout;
}
const kContinue = Symbol('meshcar.continue');
type Relaying = UpstreamStream & { [kContinue]?: Pending | undefined };

/**
 * Calls `app.sendContinue()` once: on the upstream's 100, or after the grace period; never
 * after its answer. Shared listeners find the pending 100 on the stream (no closures per request).
 */
export function relayContinue(upstream: UpstreamStream, graceMs: number, app: ContinueSender): void {
  (upstream as Relaying)[kContinue] = { app, timer: setTimeout(sendContinue, graceMs, upstream) };
  upstream.on('continue', onContinue);
  upstream.on('response', onDone);
  upstream.on('close', onDone);
}

/** Whether the app still waits for a 100 Continue on `upstream` (neither the upstream's nor our own has gone). */
export function awaitingContinue(upstream: UpstreamStream): boolean {
  return (upstream as Relaying)[kContinue] !== undefined;
}

function stop(upstream: Relaying): Pending | undefined {
  const pending = upstream[kContinue];
  if (pending === undefined) return undefined;
  upstream[kContinue] = undefined;
  clearTimeout(pending.timer);
  return pending;
}

function sendContinue(upstream: Relaying): void {
  const pending = stop(upstream);
  if (pending === undefined) return;
  // the wait for the 100 is the endpoint's latency, the upload after it the app's (pool-counting.ts)
  markContinued(upstream);
  pending.app.sendContinue();
}

function onContinue(this: Relaying): void {
  sendContinue(this);
}

function onDone(this: Relaying): void {
  stop(this);
}

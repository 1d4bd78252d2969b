// Expect: 100-continue across the hop. The upstream's 100 is relayed as soon as it arrives.
// An upstream that ignores the expectation would leave an app that waits for the 100 (Node's
// client does) waiting until a timeout; RFC 9110 §10.1.1 lets a client send its body without
// it, so after a grace period with neither a 100 nor a final answer we send the 100 ourselves,
// as curl does on its own after a second (sooner when the upstream's timeout is short: the
// body must still have time to be answered).

import type { UpstreamStream } from './upstream-stream.js';

const CONTINUE_GRACE_MS = 1000;

export function continueGraceMs(upstreamTimeoutMs: number): number {
  return Math.min(CONTINUE_GRACE_MS, Math.floor(upstreamTimeoutMs / 2));
}

export function expectsContinue(expect: string | undefined): boolean {
  return expect !== undefined && expect.toLowerCase() === '100-continue';
}

/** Who sends the app its 100 Continue (the forwarder's controller, src/outbound/attempt.ts). */
export interface ContinueSender {
  sendContinue(): void;
}

/** Calls `app.sendContinue()` once: on the upstream's 100, or after the grace period; never after its answer. */
export function relayContinue(upstream: UpstreamStream, graceMs: number, app: ContinueSender): void {
  let done = false;
  const stop = () => {
    done = true;
    clearTimeout(timer);
  };
  const send = () => {
    if (done) return;
    stop();
    app.sendContinue();
  };
  const timer = setTimeout(send, graceMs);
  upstream.once('continue', send);
  upstream.once('response', stop);
  upstream.once('close', stop);
}

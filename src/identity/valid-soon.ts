// An SVID that starts a little in the future: what a CA whose clock runs ahead of ours (by more
// than its backdating) issues. It is kept and stored at once (the join token that paid for it
// may be single-use), and served only from its start: a certificate before its notBefore is
// refused by every peer. Said once, at warn, with how far ahead the CA is.

import type { Logger } from 'pino';
import { formatApproxDuration } from '../config/duration.js';
import type { Svid } from './svid.js';
import { WallClockTimer } from '../wall-clock-timer.js';

/** Past the start, before it is served: the clock's second is over (peers compare in seconds). */
export const VALIDITY_MARGIN_MS = 1_000;

/** When `svid` may be served (ms since the epoch): now, or a moment after it starts. */
export function servableAtMs(svid: Svid, now: number = Date.now()): number {
  const from = svid.validFrom.getTime();
  return from > now ? from + VALIDITY_MARGIN_MS : now;
}

/** The one warning for an SVID that is not valid yet; `keeping` names what serves until then. */
export function warnNotYetValid(logger: Logger, svid: Svid, keeping: string, now: number = Date.now()): void {
  const aheadMs = svid.validFrom.getTime() - now;
  logger.warn(
    { serial: svid.serialHex, validFrom: svid.validFrom.toISOString(), aheadMs },
    `the new SVID (serial ${svid.serialHex}) is not valid before ${svid.validFrom.toISOString()}: the CA's clock is ahead of this host's by at least ${formatApproxDuration(aheadMs)} (more than the CA backdates); ` +
      `it is stored and will be served from then, ${keeping} until then; set both clocks right (NTP)`,
  );
}

/** Resolves once `svid` may be served (at once if it may now); rejects with `signal`'s reason once it is aborted. */
export function untilServable(svid: Svid, signal?: AbortSignal): Promise<void> {
  const at = servableAtMs(svid);
  if (at <= Date.now()) return Promise.resolve();
  if (signal?.aborted) return Promise.reject(signal.reason);
  // a pending start is work to do: not unref'd, but let go at a stop (a SIGTERM during it
  // waited for the start, up to the 5 minutes a CA may be ahead); by the wall clock, as the
  // peers judging the start see it
  return new Promise((resolve, reject) => {
    const timer = new WallClockTimer();
    const onAbort = () => {
      timer.cancel();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    timer.set(at, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

// The outbound drain's last wait: an app connection the listener took before it closed, whose
// first request has not been read yet (on the wire, or half of it), is answered, not closed
// under it. The drain counted only calls in flight, so with none it ended at once and the stop
// closed such a connection: the app's call met a reset with its request unread (a review: a
// head sent in two parts around SIGTERM, and 3 of 9 resets across 12 drains under load, each
// accepted and closed 7-11 ms later without a read). Bounded: an app's pooled connection that
// never sends holds the exit this long at most.

import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Activity } from './activity.js';
import type { AppListener } from './listener.js';

/** How long the drain waits for a taken connection's first request. */
export const FIRST_REQUEST_WAIT_MS = 500;

/** How often the connections are looked at meanwhile (only during this wait). */
const LOOK_EVERY_MS = 5;

/**
 * Resolves true once no connection is left without a request read and nothing is in flight (the
 * requests that came were answered, with `Connection: close`), or at the bound; false when a
 * call that came in did not finish by `deadline` (performance.now() time).
 */
export async function awaitFirstRequests(listener: AppListener, activity: Activity, deadline: number): Promise<boolean> {
  const until = Math.min(deadline, performance.now() + FIRST_REQUEST_WAIT_MS);
  while (listener.connectionsWithoutRequest() > 0 && performance.now() < until) {
    await delay(LOOK_EVERY_MS);
    if (!(await activity.whenIdle(Math.max(0, deadline - performance.now())))) return false;
  }
  return true;
}

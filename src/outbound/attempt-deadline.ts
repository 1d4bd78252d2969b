// The response-head deadline of an attempt controller (attempt.ts): which limit stands (the
// app's own grpc-timeout / x-request-timeout, counted from the request's arrival, or the
// upstream's timeout, counted from the end of the request body as Envoy's route timeout is: the
// sooner), when it is (re)armed, and what its passing means for the endpoint. Separate from the
// controller's flow: it is the one timing policy of the attempt, read by the retries too
// (attempt-retry.ts passDeadline). Plain functions of the controller; the shared deadline queue
// carries it as its argument: no closure per request.

import { performance } from 'node:perf_hooks';
import { DeadlineQueue } from '../http/deadline-queue.js';
import type { Attempt } from './attempt.js';
import { markCancelled, markRequestSent } from './pool-counting.js';
import { APP_DEADLINE, upstreamTimeout } from './upstream-errors.js';
import { noAddress } from './first-addresses.js';
import { probeSessionOf } from './session-probe.js';

// the request deadlines of all attempts: one timer per duration (src/http/deadline-queue.ts)
const DEADLINES = new DeadlineQueue<Attempt>(deadlinePassed);

/**
 * (Re)arms the response-head deadline: the app's own, from the request's arrival, and, once
 * the body has ended (`withTimeout`), the upstream's timeout from now (0: none); the sooner.
 * With neither, no deadline runs: only the idle timeout guards the stream.
 */
export function armDeadline(attempt: Attempt, withTimeout: boolean): void {
  attempt.timer?.cancel();
  attempt.timer = undefined;
  const now = performance.now();
  const app = attempt.appDeadlineMs;
  const appAt = app === undefined ? Infinity : attempt.exchange.startedMs + app;
  const timeout = attempt.timeoutMs;
  const ownAt = withTimeout && timeout > 0 ? now + timeout : Infinity;
  attempt.appDeadline = appAt < ownAt;
  attempt.deadlineAt = Math.min(appAt, ownAt);
  attempt.deadlineMs = attempt.appDeadline ? (app as number) : timeout;
  if (attempt.deadlineAt !== Infinity) attempt.timer = DEADLINES.add(attempt, Math.max(1, attempt.deadlineAt - now));
}

/** The app's request body ended (the shared 'end' listener, attempt-events.ts): the upstream's timeout starts now. */
export function bodyEnded(attempt: Attempt): void {
  if (attempt.bodyDone || attempt.over()) return;
  attempt.bodyDone = true;
  // the stream carrying it now has the whole request: a wait the app gives up on counts from here
  if (attempt.upstream !== undefined) markRequestSent(attempt.upstream);
  armDeadline(attempt, true);
}

/** The deadline queue's callback: no response head in time. */
function deadlinePassed(attempt: Attempt): void {
  // the app's own deadline (grpc-timeout, x-request-timeout) is the app giving up, not the
  // endpoint failing: one caller's tight deadlines would otherwise get healthy endpoints ejected
  const up = attempt.upstream;
  // still waiting for a first address when the upstream's timeout (which bounds that wait too)
  // ends: no upstream was asked. The app's own deadline is the app giving up: 504 as always
  if (!attempt.appDeadline && up === undefined && attempt.pool.endpoints.size === 0) {
    attempt.fail(noAddress(attempt.pool));
    return;
  }
  if (attempt.appDeadline && up !== undefined && !up.closed) markCancelled(up);
  // slow, or a session that no longer works: its PING tells (session-probe.ts)
  if (up !== undefined && !up.closed) probeSessionOf(up);
  const name = attempt.pool.name;
  attempt.fail(upstreamTimeout(name, attempt.deadlineMs, undefined, attempt.appDeadline ? APP_DEADLINE : `outbound.upstreams.${name}.timeout`));
}

// One request waiting on an upstream pool's slow path (a session being dialled, or a stream
// slot): bounded in time, and cancellable by its requester. Without a bound, an endpoint that
// completes TLS but never sends SETTINGS (or a dial that never ends) held the request, its
// `pool.pending` count and its circuit-breaker slot for ever. Each bounded piece of work (one
// endpoint's wait) gets its own token, cancelled when the requester cancels or when the bound
// passes: the session layers below (the agent's listeners, H2SessionPool.request) read the
// token before they dial or make a stream, so a wait that ended never dials on, and never sends
// a request head to an endpoint it has left (the failover sent it to the next one already: a
// POST would have been delivered twice).

import { performance } from 'node:perf_hooks';
import { MeshcarError } from '../errors.js';
import type { UpstreamEndpoint } from './endpoints.js';

/** Why a wait was given up by its requester (not the endpoint's fault: never counted against it). */
export const WAIT_CANCELLED = Symbol('meshcar.waitCancelled');

/** What the session layers read of one bounded wait: whether it still wants a stream. */
export interface WaitToken {
  readonly cancelled: boolean;
  /**
   * The session layer holds the request for a probe's verdict on a session gone silent
   * (probed-sessions.ts): the bound does not pass meanwhile, as no dial or SETTINGS is awaited
   * (it counted as a connect failure: the endpoint rested, retries spent).
   */
  holding?(on: boolean): void;
}

class BoundToken implements WaitToken {
  cancelled = false;
  held = false;
  /** When the last hold ended: the bound counts from then, whole. */
  holdEndedAt = Number.NEGATIVE_INFINITY;
  holding(on: boolean): void {
    if (!on && this.held) this.holdEndedAt = performance.now(); // only a hold that was on ends
    this.held = on;
  }
}

export class StreamWait {
  /** The requester went away: nothing more may be made for this request. */
  cancelled = false;
  /** Ends the bounded wait in progress (the requester cancelled). */
  private endNow: ((err: unknown) => void) | undefined = undefined;

  /**
   * `work(token)`, given up after `limitMs` (an endpoint failure: the caller marks it) or when
   * the requester cancels; either cancels `token`. A result that comes after the wait ended is
   * handed to `orphan`.
   */
  bound<T>(endpoint: UpstreamEndpoint, limitMs: number, work: (token: WaitToken) => Promise<T>, orphan: (late: T) => void): Promise<T> {
    if (this.cancelled) return Promise.reject(cancelledError());
    const token = new BoundToken();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const end = (err: unknown) => {
        if (done) return;
        done = true;
        token.cancelled = true;
        clearTimeout(timer);
        if (this.endNow === end) this.endNow = undefined;
        reject(err);
      };
      // passed while the request is held for a probe's verdict, or sooner than a whole bound
      // after the hold ended: it runs on to a whole bound from the hold's end (the dial that
      // follows a hold had only what was left of the turn: an endpoint failure 33 ms into it)
      const expire = (): void => {
        const sinceHold = performance.now() - token.holdEndedAt;
        if (!token.held && sinceHold >= limitMs) return end(boundExpired(endpoint, limitMs));
        timer = setTimeout(expire, token.held ? limitMs : limitMs - sinceHold);
        timer.unref();
      };
      let timer = setTimeout(expire, limitMs);
      // like every outbound timer: a wait in progress never keeps the process alive
      timer.unref();
      this.endNow = end;
      let promise: Promise<T>;
      try {
        promise = work(token);
      } catch (err) {
        promise = Promise.reject(err);
      }
      promise.then(
        (value) => {
          if (done) return orphan(value);
          done = true;
          clearTimeout(timer);
          if (this.endNow === end) this.endNow = undefined;
          resolve(value);
        },
        (err: unknown) => end(err),
      );
    });
  }

  /**
   * Waits for `promise` (whichever way it settles) at most `limitMs`, and no longer than the
   * requester does: cancel() rejects it with the cancelled error. For waits that are no
   * endpoint's (the first lookup of the upstream's names: first-addresses.ts).
   */
  upTo(promise: Promise<unknown>, limitMs: number): Promise<void> {
    if (this.cancelled) return Promise.reject(cancelledError());
    return new Promise<void>((resolve, reject) => {
      const end = (err: unknown) => {
        clearTimeout(timer);
        if (this.endNow === end) this.endNow = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => end(undefined), limitMs);
      timer.unref();
      this.endNow = end;
      promise.then(
        () => end(undefined),
        () => end(undefined),
      );
    });
  }

  /** The requester no longer wants a stream: the wait ends now, nothing is counted against the endpoint. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.endNow?.(cancelledError());
  }
}

/**
 * The bound expiry of waits on one endpoint, one error object per bound's length: the waiters
 * that gave up on the same dial together are one failure of the endpoint (pool-failover.ts
 * records each error object once), not one per waiter (5 waiters used to be 5 consecutive
 * failures, an outlier ejection).
 */
const EXPIRED = new WeakMap<UpstreamEndpoint, { readonly error: Error; readonly until: number }>();

function boundExpired(endpoint: UpstreamEndpoint, limitMs: number): Error {
  const now = performance.now();
  const known = EXPIRED.get(endpoint);
  if (known !== undefined && now < known.until) return known.error;
  const error = Object.assign(new Error(`${endpoint.key}: no stream within ${limitMs} ms (no session, or no SETTINGS from it)`), { code: 'ETIMEDOUT' });
  EXPIRED.set(endpoint, { error, until: now + limitMs });
  return error;
}

/** The error of a wait its requester gave up (isWaitCancelled holds for it). */
export function cancelledError(): MeshcarError {
  return Object.assign(new MeshcarError('upstream_unavailable', 'the request no longer waits for a stream'), { [WAIT_CANCELLED]: true });
}

export function isWaitCancelled(err: unknown): boolean {
  return (err as { [WAIT_CANCELLED]?: boolean } | null)?.[WAIT_CANCELLED] === true;
}

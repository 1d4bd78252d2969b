// One request waiting on an upstream pool's slow path (a session being dialled, or a stream
// slot): bounded in time, and cancellable by its requester. Without a bound, an endpoint that
// completes TLS but never sends SETTINGS (or a dial that never ends) held the request, its
// `pool.pending` count and its circuit-breaker slot for ever. The session layers below (the
// agent's listeners, H2SessionPool.request) read `cancelled` before they make a stream, so a
// wait that ended never leaves a stream nobody owns.

import { MeshcarError } from '../errors.js';
import type { UpstreamEndpoint } from './endpoints.js';

/** Why a wait was given up by its requester (not the endpoint's fault: never counted against it). */
export const WAIT_CANCELLED = Symbol('meshcar.waitCancelled');

export class StreamWait {
  /** The requester went away, or the bound passed: nothing more may be made for this wait. */
  cancelled = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private rejectNow: ((err: unknown) => void) | undefined = undefined;

  /**
   * `work`, given up after `limitMs` (an endpoint failure: the caller marks it) or when the
   * requester cancels. A result that comes after the wait ended is handed to `orphan`.
   */
  bound<T>(endpoint: UpstreamEndpoint, work: Promise<T>, limitMs: number, orphan: (late: T) => void): Promise<T> {
    if (this.cancelled) {
      work.then(orphan, ignore);
      return Promise.reject(cancelledError());
    }
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.rejectNow = undefined;
      };
      this.rejectNow = (err) => {
        finish();
        reject(err);
      };
      this.timer = setTimeout(() => {
        finish();
        reject(Object.assign(new Error(`${endpoint.key}: no stream within ${limitMs} ms (no session, or no SETTINGS from it)`), { code: 'ETIMEDOUT' }));
      }, limitMs);
      work.then(
        (value) => {
          if (done) return orphan(value);
          finish();
          resolve(value);
        },
        (err: unknown) => {
          if (done) return;
          finish();
          reject(err);
        },
      );
    });
  }

  /** The requester no longer wants a stream: the wait ends now, nothing is counted against the endpoint. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.rejectNow?.(cancelledError());
  }
}

function cancelledError(): MeshcarError {
  return Object.assign(new MeshcarError('upstream_unavailable', 'the request no longer waits for a stream'), { [WAIT_CANCELLED]: true });
}

export function isWaitCancelled(err: unknown): boolean {
  return (err as { [WAIT_CANCELLED]?: boolean } | null)?.[WAIT_CANCELLED] === true;
}

function ignore(): void {}

// Requests (and WebSocket tunnels) in flight on the app side, and how long the app has been
// quiet: drain() waits for the first to reach zero, the sidecar uses the second to decide when
// the app has stopped calling out.

import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

export class Activity {
  private count = 0;
  private lastChangeMs = performance.now();
  private waiters: Array<() => void> = [];

  get inFlight(): number {
    return this.count;
  }

  enter(): void {
    this.count += 1;
    this.lastChangeMs = performance.now();
  }

  leave(): void {
    this.count -= 1;
    this.lastChangeMs = performance.now();
    if (this.count === 0 && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /**
   * Leaves once `stream` closes (what it carries is still on its way). `stallMs` > 0: every
   * `stallMs` until then, `stalled(stream)` says whether it stopped (and has been dealt with)
   * or moved, and is checked again. A closure and a timer each: for rare cases only.
   */
  leaveOnClose<S extends EventEmitter>(stream: S, stallMs: number, stalled: (stream: S) => boolean): void {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      timer = stalled(stream) ? undefined : setTimeout(check, stallMs).unref();
    };
    if (stallMs > 0) timer = setTimeout(check, stallMs).unref();
    stream.once('close', () => {
      clearTimeout(timer);
      this.leave();
    });
  }

  /** 0 while anything is in flight, else milliseconds since the last request finished. */
  idleForMs(): number {
    return this.count > 0 ? 0 : performance.now() - this.lastChangeMs;
  }

  /** Resolves true once nothing is in flight, or false when timeoutMs passes first. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(wake);
    });
  }
}

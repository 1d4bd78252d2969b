// Requests waiting for a stream slot on the h2c app's sessions (h2c-pool.ts), oldest first. The
// queue is bounded (past maxWaiting a request is answered 503 at once: a queue without bound
// holds memory and time for an app that will not catch up), and a request waits no longer than
// its own deadline: the exchange's timers still run, and its end (timeout, the caller gone)
// takes it out of the queue (app-h2c.ts hands the exchange a handle whose cancel does that).

import type { Lease } from './h2c-pool.js';

export interface PoolWaiter {
  /** A slot on `lease` is this request's now (release() it when its stream closes). */
  granted(lease: Lease): void;
  /** No slot will come: the app could not be reached, or the sidecar is closing. */
  failed(err: Error): void;
}

export class WaitQueue {
  // a Set keeps insertion order and drops a cancelled waiter in O(1)
  private readonly queue = new Set<PoolWaiter>();
  /** Requests that waited for a slot, over the pool's life (tests; meshcar_app_stream_waits_total counts them by result). */
  total = 0;
  /** The most that waited at once. */
  peak = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.queue.size;
  }

  add(waiter: PoolWaiter): boolean {
    if (this.queue.size >= this.max) return false;
    this.queue.add(waiter);
    this.total++;
    if (this.queue.size > this.peak) this.peak = this.queue.size;
    return true;
  }

  delete(waiter: PoolWaiter): void {
    this.queue.delete(waiter);
  }

  shift(): PoolWaiter | undefined {
    for (const waiter of this.queue) {
      this.queue.delete(waiter);
      return waiter;
    }
    return undefined;
  }

  failAll(err: Error): void {
    const waiting = [...this.queue];
    this.queue.clear();
    for (const waiter of waiting) waiter.failed(err);
  }
}

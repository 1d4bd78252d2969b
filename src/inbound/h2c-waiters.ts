// Requests waiting for a stream slot on the h2c app's sessions (h2c-pool.ts): callers take
// turns, each caller's requests oldest first (src/http/fair-queue.ts), so one caller's burst
// does not put everyone else's requests behind it. The queue is bounded (past maxWaiting a
// request is answered 503: a queue without bound holds memory and time for an app that will
// not catch up); when it is full, the caller with the most waiting loses its newest request to
// a caller with fewer, so a flood fills the queue with the flooder's requests only until
// another caller asks. A request waits no longer than
// its own deadline: the exchange's timers still run, and its end (timeout, the caller gone)
// takes it out of the queue (app-h2c.ts hands the exchange a handle whose cancel does that).

import type { Lease } from './h2c-lease.js';
import { FairQueue } from '../http/fair-queue.js';

export interface PoolWaiter {
  /** Whose request it is (the caller's SPIFFE ID): the key callers take turns by. */
  readonly caller: string;
  /** A slot on `lease` is this request's now (release() it when its stream closes). */
  granted(lease: Lease): void;
  /** No slot will come: the app could not be reached, or the sidecar is closing. */
  failed(err: Error): void;
}

export class WaitQueue {
  private readonly queue = new FairQueue<PoolWaiter>();
  /** Requests that waited for a slot, over the pool's life (tests; meshcar_app_stream_waits_total counts them by result). */
  total = 0;
  /** The most that waited at once. */
  peak = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.queue.size;
  }

  /** Queues `waiter`; the waiter that gets no place when the queue is full (`waiter`, or one it crowded out), else undefined. */
  add(waiter: PoolWaiter): PoolWaiter | undefined {
    const refused = this.queue.addWithin(this.max, waiter.caller, waiter);
    if (refused === waiter) return waiter;
    this.total++;
    if (this.queue.size > this.peak) this.peak = this.queue.size;
    return refused;
  }

  delete(waiter: PoolWaiter): void {
    this.queue.delete(waiter);
  }

  shift(): PoolWaiter | undefined {
    return this.queue.shift();
  }

  /** The next waiter in turn whose caller `eligible` lets through (not holding its share of the slots). */
  shiftWhere(eligible: (caller: string) => boolean): PoolWaiter | undefined {
    return this.queue.shiftWhere(eligible);
  }

  failAll(err: Error): void {
    const waiting = this.queue.drain();
    for (const waiter of waiting) waiter.failed(err);
  }
}

// The two deadlines of every inbound exchange (exchange.ts): the app must send its response
// head within the inbound timeout, and bytes must move (either way) within the idle timeout,
// until the caller has taken the whole answer (not only until the app has sent it).
// Each is an entry in a deadline queue shared by all exchanges (one timer per duration, see
// src/http/deadline-queue.ts) that carries the exchange as its argument: no timer, closure
// or object of its own per request. The exchange cancels its entries when it ends.

import { performance } from 'node:perf_hooks';
import { DeadlineQueue } from '../http/deadline-queue.js';
import { DONE, WAITING, type Exchange } from './exchange.js';

/**
 * Starts the per-request timers: the app must send its response head within `headMs`, and
 * bytes must move (either way) at least every `idleMs` until the exchange is over.
 */
export function startTimers(exchange: Exchange, headMs: number, idleMs: number): void {
  if (exchange.timer === undefined) exchange.timer = HEAD_DEADLINES.add(exchange, headMs);
  if (exchange.idleTimer === undefined && idleMs > 0) {
    exchange.idleTimeoutMs = idleMs;
    exchange.lastActivity = performance.now();
    exchange.idleTimer = IDLE_DEADLINES.add(exchange, idleMs);
  }
}

/** Body bytes moved (either way): the idle clock starts again. */
export function touch(exchange: Exchange): void {
  if (exchange.idleTimer !== undefined) exchange.lastActivity = performance.now();
}

/** Called by the idle timer: cut the exchange, or sleep for the rest of the idle time. */
function checkIdle(exchange: Exchange): void {
  exchange.idleTimer = undefined;
  if (exchange.phase === DONE) {
    // the app is done; the caller must still take the answer (or send the rest of its upload):
    // the answer moving toward it is progress too
    if (!exchange.awaitingDelivery) return;
    const delivered = exchange.deliveryMark;
    if (delivered > exchange.deliveredAtCheck) exchange.lastActivity = performance.now();
    exchange.deliveredAtCheck = delivered;
  }
  const quietMs = performance.now() - exchange.lastActivity;
  if (quietMs >= exchange.idleTimeoutMs) {
    if (exchange.phase === DONE) exchange.callerStalled();
    else {
      exchange.fail('upstream_timeout', `no bytes moved either way for ${exchange.idleTimeoutMs} ms`);
      // the 504 must be taken as any answer is
      if (exchange.awaitingDelivery) exchange.idleTimer = IDLE_DEADLINES.add(exchange, exchange.idleTimeoutMs);
    }
    return;
  }
  exchange.idleTimer = IDLE_DEADLINES.add(exchange, exchange.idleTimeoutMs - quietMs);
}

function onTimeout(exchange: Exchange, ms: number): void {
  if (exchange.phase === WAITING) exchange.fail('upstream_timeout', `the app did not answer within ${ms} ms`);
}

// one timer per duration for all exchanges, not one per exchange (src/http/deadline-queue.ts)
const HEAD_DEADLINES = new DeadlineQueue<Exchange>(onTimeout);
const IDLE_DEADLINES = new DeadlineQueue<Exchange>(checkIdle);

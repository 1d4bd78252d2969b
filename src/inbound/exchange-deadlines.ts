// The two deadlines of every inbound exchange (exchange.ts): the app must send its response
// head in time, and bytes must move (either way) within the idle timeout, until the caller has
// taken the whole answer (not only until the app has sent it). The head's time is the route's
// timeout counted from the end of the request body (at once for a bodiless request), as
// Envoy's route timeout: an upload slower than the timeout is the idle timeout's to guard;
// the caller's own deadline (grpc-timeout, x-request-timeout) counts from the request's
// arrival, and the sooner of the two holds. A timeout of 0 sets none. The wait for a stream
// to the app (app-h2c.ts: the app's stream limit reached) is bounded by the route's timeout as
// well, body or not, as the outbound's (src/outbound/attempt.ts): a waiting request's body is
// held, so its end cannot come to start the timer; once the request has its stream, the body
// flows and the timer waits for its end again.
// Each is an entry in a deadline queue shared by all exchanges (one timer per duration, see
// src/http/deadline-queue.ts) that carries the exchange as its argument: no timer, closure
// or object of its own per request. The exchange cancels its entries when it ends.

import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { DeadlineQueue } from '../http/deadline-queue.js';
import { DONE, STREAMING, WAITING, type Exchange } from './exchange.js';
import { bindExchange, exchangeOf } from './exchange-links.js';

/**
 * Starts the per-request timers: the app must send its response head within `timeoutMs` of the
 * end of the request body (0: no limit) and within the caller's own `callerDeadlineMs` of its
 * arrival (undefined: none), and bytes must move (either way) at least every `idleMs` until the
 * exchange is over.
 */
export function startTimers(exchange: Exchange, timeoutMs: number, callerDeadlineMs: number | undefined, idleMs: number, timeoutKey = 'inbound.timeout', idleKey = 'inbound.idleTimeout'): void {
  if (exchange.timer === undefined) {
    exchange.headTimeoutMs = timeoutMs;
    exchange.headTimeoutKey = timeoutKey;
    exchange.setCallerDeadline(callerDeadlineMs);
    armHead(exchange, !exchange.requestHasBody);
    if (exchange.requestHasBody) {
      // a listener for 'end' leaves the body's flow as it is; one shared function, no closure
      bindExchange(exchange.requestBody, exchange);
      exchange.requestBody.on('end', onRequestEnd);
    }
  }
  if (exchange.idleTimer === undefined && idleMs > 0) {
    exchange.idleTimeoutMs = idleMs;
    exchange.idleTimeoutKey = idleKey;
    exchange.lastActivity = performance.now();
    exchange.idleTimer = IDLE_DEADLINES.add(exchange, idleMs);
  }
}

/**
 * The request waits for a stream to the app with its body still to come: the route's timeout
 * runs from now (its body is held meanwhile: its end would never start it). A bodiless request
 * or an ended body has it running already (and a replay's must not be pushed back).
 */
export function startHeadTimeout(exchange: Exchange): void {
  if (exchange.phase === WAITING && bodyPending(exchange)) armHead(exchange, true);
}

/** The request has its stream: while its body still comes, only the caller's deadline holds (the route's starts at the body's end). */
export function awaitBodyEnd(exchange: Exchange): void {
  if (exchange.phase === WAITING && bodyPending(exchange)) armHead(exchange, false);
}

function bodyPending(exchange: Exchange): boolean {
  return exchange.requestHasBody && !exchange.requestBodyEnded;
}

/** (Re)arms the head deadline: the caller's, and once the body has ended (`withTimeout`) the route's from now. */
function armHead(exchange: Exchange, withTimeout: boolean): void {
  exchange.timer?.cancel();
  exchange.timer = undefined;
  const now = performance.now();
  const caller = exchange.callerDeadlineMs;
  const callerAt = caller === undefined ? Infinity : exchange.startedAt + caller;
  const ownAt = withTimeout && exchange.headTimeoutMs > 0 ? now + exchange.headTimeoutMs : Infinity;
  if (callerAt === Infinity && ownAt === Infinity) return;
  exchange.headLimitIsCaller = callerAt < ownAt;
  exchange.headLimitMs = exchange.headLimitIsCaller ? (caller as number) : exchange.headTimeoutMs;
  exchange.timer = HEAD_DEADLINES.add(exchange, Math.max(1, Math.min(callerAt, ownAt) - now));
}

/** The caller's request body ended: the route's timeout for the app's head starts now. */
function onRequestEnd(this: Readable): void {
  const exchange = exchangeOf(this);
  exchange.requestBodyEnded = true;
  if (exchange.phase === WAITING) armHead(exchange, true);
}

/** The response head's deadline is over (the head came, or the exchange ended): its entry goes. */
export function stopHeadDeadline(exchange: Exchange): void {
  if (exchange.timer !== undefined) {
    exchange.timer.cancel();
    exchange.timer = undefined;
  }
}

/** The idle deadline is over (the exchange ended, or became a tunnel with its own): its entry goes. */
export function stopIdleDeadline(exchange: Exchange): void {
  if (exchange.idleTimer !== undefined) {
    exchange.idleTimer.cancel();
    exchange.idleTimer = undefined;
  }
}

/** Body bytes moved (either way): the idle clock starts again. */
export function touch(exchange: Exchange): void {
  if (exchange.idleTimer !== undefined) exchange.lastActivity = performance.now();
}

/** Called by the idle timer: cut the exchange, or sleep for the rest of the idle time. */
function checkIdle(exchange: Exchange): void {
  exchange.idleTimer = undefined;
  // the app is done; the caller must still take the answer (or send the rest of its upload)
  if (exchange.phase === DONE && !exchange.awaitingDelivery) return;
  // the answer moving toward the caller is progress too: once the app is done, and while the
  // caller's side is full and the app's answer waits on it (a slow but steady reader takes it
  // bit by bit, and the relay resumes only once its side has drained, which may take longer
  // than the idle timeout: counted as quiet, such a download was cut)
  if (exchange.phase === DONE || callerHoldsAnswer(exchange)) {
    const delivered = exchange.deliveryMark;
    if (delivered > exchange.deliveredAtCheck) exchange.lastActivity = performance.now();
    exchange.deliveredAtCheck = delivered;
  }
  const quietMs = performance.now() - exchange.lastActivity;
  if (quietMs >= exchange.idleTimeoutMs) {
    if (exchange.phase === DONE || callerHoldsAnswer(exchange)) exchange.callerStalled();
    else {
      // nothing went to the app yet and the caller's body is unfinished (the OpenAPI check
      // reads it first): the caller stalled, 408 as the outbound answers its app's stalled
      // body (and Envoy a stream idle timeout); a 504 would blame an app nobody asked
      if (exchange.forwarder === undefined && !exchange.requestBodyEnded) exchange.fail('request_timeout', `no body bytes came from the caller for ${exchange.idleTimeoutMs} ms`);
      // the app has every byte the caller sent and waits for the rest, which the caller is not
      // sending: the caller's stall, 408, as its outbound answers its app's stalled upload. A
      // 504 upstream_timeout came first when both idle timeouts were equal (the default), and the
      // caller's outbound relayed it and scored it against this endpoint toward ejection
      else if (exchange.phase === WAITING && callerUploadStalled(exchange)) exchange.fail('request_timeout', `no bytes moved for ${exchange.idleTimeoutMs} ms while the caller's request body stayed open and the app had all of it`);
      else exchange.fail('upstream_timeout', `no bytes moved either way for ${exchange.idleTimeoutMs} ms`);
      // the answer must be taken as any answer is
      if (exchange.awaitingDelivery) exchange.idleTimer = IDLE_DEADLINES.add(exchange, exchange.idleTimeoutMs);
    }
    return;
  }
  exchange.idleTimer = IDLE_DEADLINES.add(exchange, exchange.idleTimeoutMs - quietMs);
}

/**
 * The caller's upload is unfinished and waits on the caller: nothing of it is held back for the
 * app (the body is not paused by a full connection toward the app, no bytes wait in it or in
 * the request toward the app: then the app is the one not taking it), and the caller is not
 * waiting for a 100 Continue before it sends any of it. A streaming call whose request stays
 * open (a gRPC client stream or bidi call) and whose app has all of it and answers nothing
 * counts the same way, as the outbound counts it: such routes want an idleTimeout above their
 * longest silence.
 */
function callerUploadStalled(exchange: Exchange): boolean {
  if (!exchange.requestHasBody || exchange.requestBodyEnded) return false;
  const body = exchange.requestBody;
  if (body.isPaused() || body.readableLength > 0) return false;
  // below the mark that pauses the body, bytes may wait toward the app all the same (an h2c
  // app's window shut with a few KB left over, the app's socket full): then it is the app's
  if ((exchange.upstream?.writableLength ?? 0) > 0) return false;
  return !(exchange.expectsContinue && exchange.bytesIn === 0);
}

/**
 * The answer is still coming from the app, and the caller's side is full: the caller is not
 * taking it (its window shut), the app waits on it. A reset recorded `reset`, as for an answer
 * the app had finished; it was `upstream_timeout` blaming the app ("no bytes moved either way")
 * whenever the answer was larger than what the caller's side buffers.
 */
function callerHoldsAnswer(exchange: Exchange): boolean {
  return exchange.phase === STREAMING && (exchange.responseSink as { writableNeedDrain?: boolean }).writableNeedDrain === true;
}

/** The 504's message names the limit that ran out: raising inbound.timeout does nothing for a caller's own deadline. */
function onTimeout(exchange: Exchange): void {
  if (exchange.phase !== WAITING) return;
  const limit = exchange.headLimitIsCaller ? "the caller's own deadline: its grpc-timeout or x-request-timeout" : exchange.headTimeoutKey;
  exchange.fail('upstream_timeout', `the app did not answer within ${exchange.headLimitMs} ms (${limit})`);
}

// one timer per duration for all exchanges, not one per exchange (src/http/deadline-queue.ts)
const HEAD_DEADLINES = new DeadlineQueue<Exchange>(onTimeout);
const IDLE_DEADLINES = new DeadlineQueue<Exchange>(checkIdle);

// meshcar's own pool of keep-alive connections to an HTTP/1.1 app (the default client toward
// the app; `http1: {appClient: undici}` chooses undici's Pool instead). Connections at most
// `maxConnections`, then requests wait, served caller by caller in turn and each caller's in
// the order they came (src/http/fair-queue.ts), and no caller holds more than 7/8 of them
// (app-caller-share.ts: one caller's trickling uploads cannot hold them all); the most recently used idle connection
// serves next (LIFO), so under light load a few warm connections carry it and the rest idle
// out. One timer for all idle connections, armed only while some are idle: an idle sidecar
// is not woken for a pool it does not use.
//
// Per request: no agent bookkeeping, no request or response objects, no timers; the head is
// one string written once, the answer parsed by Node's llhttp (app-connection.ts).

import { APP_CLIENT_ERRORS, appClientError, DEFAULT_MAX_WAITING, NOT_SENT, waitWithin, type AppDispatchHandler, type AppDispatcher, type AppPoolOptions, type AppRequest } from './app-dispatch.js';
import { AppConnection, type ConnectionOwner } from './app-connection.js';
import { FairQueue } from '../http/fair-queue.js';
import { CallerShare } from './app-caller-share.js';

/**
 * A connection the app says it keeps for N s is closed by us this much earlier, so a request
 * is never sent on one the app is closing at that moment (undici's keepAliveTimeoutThreshold).
 */
const HINT_MARGIN_MS = 1000;

interface Waiting {
  readonly request: AppRequest;
  readonly handler: AppDispatchHandler;
}

export class AppPool implements AppDispatcher, ConnectionOwner {
  private readonly connections = new Set<AppConnection>();
  /** Idle connections, the most recently used last. */
  private readonly idle: AppConnection[] = [];
  private readonly waiting = new FairQueue<Waiting>();
  private readonly maxConnections: number;
  private readonly maxWaiting: number;
  private readonly idleTimeoutMs: number;
  private sweepTimer: NodeJS.Timeout | undefined = undefined;
  /** When the armed sweep fires (performance.now() ms: the running time, which a step of the wall clock does not move). */
  private sweepDue = 0;
  private isClosed = false;
  private readonly share: CallerShare;

  constructor(private readonly options: AppPoolOptions) {
    this.maxConnections = options.maxConnections ?? 256;
    this.maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.share = new CallerShare(this.maxConnections);
  }

  dispatch(request: AppRequest, handler: AppDispatchHandler): void {
    if (this.isClosed) {
      handler.onError(appClientError(APP_CLIENT_ERRORS.poolClosed, 'the connection pool to the app is closed'));
      return;
    }
    const caller = request.caller ?? '';
    // a caller holding its share waits for one of its own to come back, idle connections or not
    if (!this.share.mayTake(caller)) {
      this.wait(caller, { request, handler });
      return;
    }
    const now = performance.now();
    let connection: AppConnection | undefined;
    // a retry after a broken connection takes a new one while the pool has room (AppRequest.fresh)
    const skipIdle = request.fresh === true && this.connections.size < this.maxConnections;
    while (!skipIdle && (connection = this.idle.pop()) !== undefined) {
      // one whose time ran out before the sweep came by, or that the app is closing, is not used
      if (connection.idleUntil > now && !connection.socket.destroyed) break;
      connection.destroy();
    }
    if (connection === undefined) {
      if (this.connections.size >= this.maxConnections) {
        this.wait(caller, { request, handler });
        return;
      }
      connection = this.open();
    }
    this.assign(connection, request, handler);
  }

  /**
   * Queued within maxWaiting: a queue without bound held every request a caller sent past its
   * share (its head, its exchange) until the idle timeout, ~18 KB each for a few bytes of HPACK,
   * a gigabyte from one caller (a review). The request's cancel (its deadline, its caller gone)
   * takes it out of the queue at once, not when a connection comes to find it cancelled.
   */
  private wait(caller: string, entry: Waiting): void {
    waitWithin(this.waiting, this.maxWaiting, caller, entry);
  }

  private assign(connection: AppConnection, request: AppRequest, handler: AppDispatchHandler): void {
    this.share.take(connection, request.caller ?? '');
    connection.assign(request, handler);
  }

  released(connection: AppConnection): void {
    this.share.release(connection);
    const next = this.waiting.shiftWhere(this.share.mayTake);
    if (next !== undefined) {
      this.assign(connection, next.request, next.handler);
      return;
    }
    const hint = connection.keepAliveHintMs;
    const idleMs = hint === undefined ? this.idleTimeoutMs : Math.min(this.idleTimeoutMs, hint - HINT_MARGIN_MS);
    if (idleMs <= 0) {
      connection.destroy();
      return;
    }
    connection.idleUntil = performance.now() + idleMs;
    this.idle.push(connection);
    // an earlier deadline than the armed one (an app's short Keep-Alive hint) re-arms the timer
    if (this.sweepTimer === undefined || connection.idleUntil < this.sweepDue) {
      if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
      this.sweepTimer = this.armSweep(idleMs);
    }
  }

  closed(connection: AppConnection): void {
    this.share.release(connection);
    this.connections.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    // a waiting request takes the freed place
    if (!this.isClosed && this.waiting.size > 0 && this.connections.size < this.maxConnections) {
      const next = this.waiting.shiftWhere(this.share.mayTake);
      if (next !== undefined) this.assign(this.open(), next.request, next.handler);
    }
  }

  refuseWaiting(): number {
    const waiting = this.waiting.drain();
    for (const { handler } of waiting) handler.onError(appClientError(APP_CLIENT_ERRORS.notSent, NOT_SENT));
    return waiting.length;
  }

  close(): void {
    this.isClosed = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const connection of this.connections) connection.destroy();
    const waiting = this.waiting.drain();
    for (const { handler } of waiting) handler.onError(appClientError(APP_CLIENT_ERRORS.poolClosed, 'the connection pool to the app is closed'));
  }

  private open(): AppConnection {
    const connection = new AppConnection(this.options.host, this.options.port, this, this.options.connectTimeoutMs ?? 10_000);
    this.connections.add(connection);
    return connection;
  }

  private armSweep(delayMs: number): NodeJS.Timeout {
    this.sweepDue = performance.now() + delayMs;
    const timer = setTimeout(() => this.sweep(), delayMs);
    timer.unref();
    return timer;
  }

  /** Closes the idle connections whose time is up; re-armed for the next one due, if any. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const now = performance.now();
    let nextDue = Infinity;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const connection = this.idle[i] as AppConnection;
      if (connection.idleUntil <= now) {
        this.idle.splice(i, 1);
        connection.destroy();
      } else if (connection.idleUntil < nextDue) nextDue = connection.idleUntil;
    }
    if (nextDue !== Infinity) this.sweepTimer = this.armSweep(nextDue - now);
  }
}

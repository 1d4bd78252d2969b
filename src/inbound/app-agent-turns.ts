// The per-caller share of node:http's agent toward an HTTP/1.1 app (app-http1-node.ts: requests
// with Expect or an absolute-form target, with either app client). The pools keep each caller
// to 7/8 of their connections (app-caller-share.ts), so one caller's trickling uploads cannot
// hold them all; the agent did not: its queue is one FIFO line, and a caller keeping `Expect:
// 100-continue` uploads trickling held every one of its sockets, so another caller's Expect
// upload waited for a socket until it timed out (504 after its deadline, in a review). Here
// each caller's requests in flight through the agent stay within that share; the rest wait
// their turn, callers taking turns (src/http/fair-queue.ts), within inbound.limits.maxAppWaiting
// together with the agent's own queue. A waiting request is its exchange's upstream: cancelled
// (its caller gone, its deadline passed) it leaves the line at once. A request goes to the
// agent only while one of its sockets is free, too: within their shares, two busy callers
// together pass the socket count, and the rest queued in the agent's one FIFO line, first come
// first served, where a newcomer holding nothing found the bound full and got 503 in place
// of the flooders (a review: 503 in 13 ms with two callers each sending 7 to 8 sockets).

import { FairQueue } from '../http/fair-queue.js';
import { CallerShare } from './app-caller-share.js';
import { NOT_SENT, queueFullError } from './app-dispatch.js';
import { DONE, type Exchange } from './exchange.js';
import type { UpstreamRequest } from './exchange-links.js';

export class AgentTurns {
  private readonly share: CallerShare;
  private readonly waiting = new FairQueue<Turn>();

  /**
   * `maxSockets`: the agent's sockets (the share is 7/8 of them); `agentWaiting`: requests in the
   * agent's own queue (the bound is shared); `go`: sends an exchange whose turn it is.
   */
  constructor(
    private readonly maxSockets: number,
    private readonly maxWaiting: number,
    private readonly agentWaiting: () => number,
    private readonly go: (exchange: Exchange) => void,
  ) {
    this.share = new CallerShare(maxSockets);
  }

  /** `exchange` goes now if a socket is free and its caller within its share, else waits its turn (past the bound: 503 overloaded). */
  enter(exchange: Exchange): void {
    const caller = exchange.caller.id.uri;
    if (this.share.holding < this.maxSockets && this.share.mayTake(caller)) {
      this.share.take(exchange, caller);
      this.go(exchange);
      return;
    }
    const turn = new Turn(this, exchange, caller);
    exchange.upstream = turn;
    const refused = this.waiting.addWithin(Math.max(0, this.maxWaiting - this.agentWaiting()), caller, turn);
    refused?.exchange.fail('overloaded', queueFullError(this.maxWaiting).message);
  }

  /** `exchange` is done with the agent (its request closed, or never sent): a caller within its share goes next, on the socket it freed. */
  leave(exchange: Exchange): void {
    this.share.release(exchange);
    // one that carried nothing (refused before it was sent) frees no socket
    if (this.share.holding >= this.maxSockets) return;
    for (let next = this.waiting.shiftWhere(this.share.mayTake); next !== undefined; next = this.waiting.shiftWhere(this.share.mayTake)) {
      if (next.exchange.phase === DONE) continue;
      this.share.take(next.exchange, next.caller);
      this.go(next.exchange);
      return;
    }
  }

  /** A waiting request cancelled: out of the line. */
  forget(turn: Turn): void {
    this.waiting.delete(turn);
  }

  /** A drain out of time: the requests still waiting are refused as never processed. */
  refuseWaiting(): number {
    const waiting = this.waiting.drain();
    for (const turn of waiting) turn.exchange.refuseUnsent(NOT_SENT);
    return waiting.length;
  }
}

/** A request waiting for its turn, as its exchange's upstream (cancelAppRequest destroys it). */
class Turn implements UpstreamRequest {
  readonly writableFinished = false;

  constructor(
    private readonly turns: AgentTurns,
    readonly exchange: Exchange,
    readonly caller: string,
  ) {}

  destroy(): void {
    this.turns.forget(this);
  }
}

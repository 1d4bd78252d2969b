// Per-request deadlines without a Node timer per request. Requests of one duration expire in
// the order they started, so each duration gets a lane (a doubly linked list, oldest first)
// and one Node timer, armed for the oldest deadline in it. A request that finishes unlinks its
// entry at once, so nothing of it stays behind (a lane holds only what is in flight); the
// timer, when it fires, expires what is due and re-arms for the next entry.
// setTimeout/clearTimeout per request (a Timeout object, a libuv clock read, list and
// priority-queue upkeep) were ~8 µs a request on each side in a profile at 1,000 req/s.
//
// The timer is armed for the exact deadline (to the millisecond, as setTimeout is), it is
// unref'd (a pending request's sockets keep the process alive, not its deadline), and a lane
// left empty drops its timer the next time it runs: after the last request, each duration
// wakes the process at most once more, then never.
// Up to MAX_IDLE_LANES lanes are kept that way once empty (the configured timeouts: a few
// durations, reused request after request, whose timers are not re-made each time). Beyond
// that a lane emptied by a cancel is dropped at once, its timer cleared: durations the caller
// chooses (grpc-timeout, x-request-timeout, a new value each request) made a lane and a timer
// each, kept until their deadline, up to 24.8 days: 50,000 such requests held 50,000 timers
// and +26 MB of heap after all were answered.
//
// A due timer expires its requests on the turn's check phase (setImmediate), after the poll
// phase has read what the sockets hold. A process paused past a deadline (SIGSTOP, a VM paused
// or starved of CPU) runs its due timers first on resuming, before any read: an answer that
// arrived during the pause was then thrown away as a timeout (504, and counted against a
// healthy endpoint). One immediate per lane timer, not per request.

import { MAX_TIMER_MS } from '../timer-clear.js';

/** One pending deadline; `cancel()` it when the request is over. */
export class Deadline<T> {
  /** @internal neighbours in the lane (older, newer); undefined at either end */
  prev: Deadline<T> | undefined = undefined;
  next: Deadline<T> | undefined = undefined;

  constructor(
    /** @internal undefined once fired or cancelled */
    public lane: Lane<T> | undefined,
    readonly owner: T,
    /** performance.now() at which it is due. */
    readonly at: number,
  ) {}

  cancel(): void {
    this.lane?.cancel(this);
  }
}

/** Lanes kept (empty ones included) beyond which an emptied lane is dropped at once, its timer cleared. */
export const MAX_IDLE_LANES = 32;

class Lane<T> {
  private oldest: Deadline<T> | undefined = undefined;
  private newest: Deadline<T> | undefined = undefined;
  /** A timer is pending (or the lane is firing): cleared only when the lane is dropped early (cancel). */
  private armed = false;
  private firing = false;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The timer ran: the expiry waits for this turn's reads (see the header). */
  private afterReads: ReturnType<typeof setImmediate> | undefined = undefined;
  size = 0;

  constructor(
    private readonly queue: DeadlineQueue<T>,
    readonly ms: number,
  ) {}

  add(owner: T): Deadline<T> {
    const deadline = new Deadline(this, owner, performance.now() + this.ms);
    const newest = this.newest;
    if (newest === undefined) this.oldest = deadline;
    else {
      newest.next = deadline;
      deadline.prev = newest;
    }
    this.newest = deadline;
    this.size++;
    if (!this.armed) this.arm(this.ms);
    return deadline;
  }

  /** A deadline's request is over: unlinked, and a lane left empty may go at once (MAX_IDLE_LANES). */
  cancel(deadline: Deadline<T>): void {
    this.unlink(deadline);
    // while firing, fire() itself drops or re-arms the lane once its owners' callbacks are done
    if (this.size === 0 && !this.firing && this.queue.tooManyLanes()) {
      clearTimeout(this.timer);
      clearImmediate(this.afterReads);
      this.timer = this.afterReads = undefined;
      this.armed = false;
      this.queue.dropLane(this);
    }
  }

  unlink(deadline: Deadline<T>): void {
    const { prev, next } = deadline;
    if (prev === undefined) this.oldest = next;
    else prev.next = next;
    if (next === undefined) this.newest = prev;
    else next.prev = prev;
    deadline.prev = deadline.next = deadline.lane = undefined;
    this.size--;
  }

  private arm(delayMs: number): void {
    this.armed = true;
    // setTimeout holds at most 2^31-1 ms (and turns a longer wait into 1 ms): a longer
    // deadline is reached in steps, fire() re-arming until it is due
    this.timer = setTimeout(fireAfterReads, Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(delayMs))), this).unref();
  }

  /** The timer ran: expire after this turn's poll phase has read what the sockets hold. */
  timerRan(): void {
    this.timer = undefined;
    // not unref'd: an unref'd immediate does not keep the poll phase from blocking, and would
    // wait for the next event to run (an idle timeout with nothing else going on, never)
    this.afterReads = setImmediate(fireLane, this);
  }

  fire(): void {
    this.afterReads = undefined;
    // `armed` stays true while firing: an owner's callback that adds to this lane must not arm
    // a second timer. libuv's clock may lag performance.now() by a loop turn: within a
    // millisecond is due.
    const now = performance.now() + 1;
    this.firing = true;
    try {
      let oldest = this.oldest;
      while (oldest !== undefined && oldest.at <= now) {
        this.unlink(oldest);
        this.queue.expire(oldest.owner, this.ms);
        oldest = this.oldest;
      }
    } finally {
      this.firing = false;
      // even past a callback that threw, the lane keeps a timer for what it still holds
      const oldest = this.oldest;
      if (oldest === undefined) {
        this.armed = false;
        this.queue.dropLane(this);
      } else this.arm(oldest.at - performance.now());
    }
  }
}

function fireAfterReads(lane: { timerRan(): void }): void {
  lane.timerRan();
}

function fireLane(lane: { fire(): void }): void {
  lane.fire();
}

/** Deadlines for owners of one kind, each handed to `onExpired(owner, ms)` when due. */
export class DeadlineQueue<T> {
  private readonly lanes = new Map<number, Lane<T>>();

  constructor(private readonly onExpired: (owner: T, ms: number) => void) {}

  /** A deadline `ms` from now for `owner` (whole milliseconds, at least 1). */
  add(owner: T, ms: number): Deadline<T> {
    const duration = Math.max(1, Math.ceil(ms));
    let lane = this.lanes.get(duration);
    if (lane === undefined) {
      lane = new Lane(this, duration);
      this.lanes.set(duration, lane);
    }
    return lane.add(owner);
  }

  /** @internal called by a lane */
  expire(owner: T, ms: number): void {
    this.onExpired(owner, ms);
  }

  /** @internal whether a lane just emptied by a cancel should go now rather than at its timer */
  tooManyLanes(): boolean {
    return this.lanes.size > MAX_IDLE_LANES;
  }

  /** @internal called by a lane left empty by its timer, or emptied by a cancel past MAX_IDLE_LANES */
  dropLane(lane: Lane<T>): void {
    if (this.lanes.get(lane.ms) === lane) this.lanes.delete(lane.ms);
  }

  /** Lanes kept: durations with something pending, or whose timer has not run since. */
  get laneCount(): number {
    return this.lanes.size;
  }

  /** Deadlines neither cancelled nor fired. */
  pending(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.size;
    return n;
  }
}

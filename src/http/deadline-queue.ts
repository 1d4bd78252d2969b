// Per-request deadlines without a Node timer per request. Requests of one duration expire in
// the order they started, so each duration gets a FIFO lane and one Node timer, armed for the
// oldest deadline still pending; a request that finishes only marks its entry cancelled, and
// the lane drops cancelled entries when its timer fires. setTimeout/clearTimeout per request
// (a Timeout object, a libuv clock read, list and priority-queue upkeep) were ~8 µs a request
// on each side in a profile at 1,000 req/s; an entry here is one small object and a push.
//
// The timer is armed for the exact deadline (to the millisecond, as setTimeout is), it is
// unref'd (a pending request's sockets keep the process alive, not its deadline), and a lane
// with nothing pending has no timer: an idle sidecar is never woken by this.

/** One pending deadline; `cancel()` it when the request is over. */
export class Deadline<T> {
  constructor(
    public owner: T | null,
    /** performance.now() at which it is due. */
    readonly at: number,
  ) {}

  cancel(): void {
    this.owner = null;
  }
}

/** Compacting a lane's array costs a copy: done once its dead head is this long and half the array. */
const COMPACT_AT = 1024;

class Lane<T> {
  private entries: Deadline<T>[] = [];
  private head = 0;
  /** A timer is pending (or the lane is firing): lane timers are never cleared, only left to fire. */
  private armed = false;

  constructor(
    private readonly queue: DeadlineQueue<T>,
    readonly ms: number,
  ) {}

  add(owner: T): Deadline<T> {
    const deadline = new Deadline(owner, performance.now() + this.ms);
    this.entries.push(deadline);
    if (!this.armed) this.arm(this.ms);
    return deadline;
  }

  private arm(delayMs: number): void {
    this.armed = true;
    setTimeout(fireLane, Math.max(1, Math.ceil(delayMs)), this).unref();
  }

  fire(): void {
    // `armed` stays true while firing: an owner's callback that adds to this lane must not arm a second timer
    const entries = this.entries;
    // libuv's clock may lag performance.now() by a loop turn: within a millisecond is due
    const now = performance.now() + 1;
    let head = this.head;
    while (head < entries.length) {
      const entry = entries[head] as Deadline<T>;
      if (entry.owner === null) {
        head++;
        continue;
      }
      if (entry.at > now) break;
      head++;
      const owner = entry.owner;
      entry.owner = null;
      this.queue.expire(owner, this.ms);
    }
    if (head >= entries.length) {
      // nothing pending: the lane goes (a later request makes a new one)
      this.entries = [];
      this.head = 0;
      this.armed = false;
      this.queue.dropLane(this);
      return;
    }
    if (head >= COMPACT_AT && head * 2 >= entries.length) {
      this.entries = entries.slice(head);
      head = 0;
    }
    this.head = head;
    this.arm((this.entries[head] as Deadline<T>).at - performance.now());
  }

  /** Deadlines neither cancelled nor fired (for tests and /debug views). */
  pending(): number {
    let n = 0;
    for (let i = this.head; i < this.entries.length; i++) if ((this.entries[i] as Deadline<T>).owner !== null) n++;
    return n;
  }
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

  /** @internal called by a lane with nothing pending */
  dropLane(lane: Lane<T>): void {
    if (this.lanes.get(lane.ms) === lane) this.lanes.delete(lane.ms);
  }

  /** Lanes with a timer (durations with something pending, or not yet swept). */
  get laneCount(): number {
    return this.lanes.size;
  }

  pending(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.pending();
    return n;
  }
}

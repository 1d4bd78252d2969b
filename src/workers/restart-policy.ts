// When a worker that died unexpectedly is started again: at once, unless it is crash-looping.
// At most MAX_RESTARTS restarts in any window of WINDOW_MS; beyond that the next restart waits
// until the oldest one leaves the window, so a worker that dies at start costs a few forks a
// minute, not a core. On the running clock (performance.now): a wall clock stepped back 30 min
// held the next restart for 31 min, and /ready at 503 all that time (the workers review).

import { performance } from 'node:perf_hooks';

export const MAX_RESTARTS = 5;
export const WINDOW_MS = 60_000;

export class RestartPolicy {
  private readonly times: number[] = [];

  constructor(private readonly max = MAX_RESTARTS, private readonly windowMs = WINDOW_MS) {}

  /** Milliseconds to wait before the next restart (0: now); records that restart at its time. */
  next(now = performance.now()): number {
    while (this.times.length > 0 && (this.times[0] as number) <= now - this.windowMs) this.times.shift();
    const delay = this.times.length < this.max ? 0 : (this.times[this.times.length - this.max] as number) + this.windowMs - now;
    this.times.push(now + delay);
    return delay;
  }

  /** Restarts within the window ending now (for the log line). */
  recent(now = performance.now()): number {
    return this.times.filter((t) => t > now - this.windowMs && t <= now).length;
  }
}

// Timers that fire at a wall-clock instant: a certificate's expiry, a renewal or rotation time.
// Node's timers count the process's running (monotonic) time, certificates the wall clock's:
// after a VM or laptop is suspended and resumed, or the clock is stepped ahead, a 12 h timer
// still waits its 12 h, past an instant the wall clock has reached meanwhile. Each
// WallClockTimer is one ordinary timer for the whole wait (exact to the millisecond, no wake-up
// before it), and one ClockWatch per process looks at the clock every CLOCK_CHECK_MS for all of
// them: when the wall clock moved further than the process ran, every timer it watches is
// re-armed by the wall clock (one due meanwhile fires at once). So a sidecar holding thousands
// of connections, each with its own expiry, wakes once per 30 s for the lot, not per connection.
// A clock set back makes a timer fire early: it looks at Date.now() and waits again.

// setTimeout holds at most MAX_TIMER_MS (24.8 days; longer wraps to 1 ms): longer waits go in steps
import { clearTimer, MAX_TIMER_MS } from './timer-clear.js';

/** How often the wall clock is compared with the running time; a jump is acted on within this. */
export const CLOCK_CHECK_MS = 30_000;
/** A jump this large or larger is worth a warning in a caller's log (a suspend, a clock set). */
export const CLOCK_JUMP_MS = 60_000;
/** Smaller differences (NTP slewing, rounding) leave the timers as they are. */
const JUMP_TOLERANCE_MS = 1_000;

/** One look every checkMs, only while it watches a timer; never keeps the process alive. */
export class ClockWatch {
  private readonly timers = new Set<WallClockTimer>();
  private ticker: NodeJS.Timeout | undefined;
  private wallAt = 0;
  private monoAt = 0;

  constructor(private period: number = CLOCK_CHECK_MS) {}

  get checkMs(): number {
    return this.period;
  }

  /** Tests shorten the period of the process's watch (and put it back). */
  set checkMs(ms: number) {
    this.period = ms;
    if (this.ticker === undefined) return;
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.start();
  }

  add(timer: WallClockTimer): void {
    this.timers.add(timer);
    if (this.ticker === undefined) this.start();
  }

  delete(timer: WallClockTimer): void {
    this.timers.delete(timer);
    if (this.timers.size === 0 && this.ticker !== undefined) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private start(): void {
    this.mark();
    this.ticker = setInterval(this.look, this.period);
    this.ticker.unref();
  }

  private mark(): void {
    this.wallAt = Date.now();
    this.monoAt = performance.now();
  }

  // an arrow: handed to setInterval without a bind
  private readonly look = (): void => {
    const jumpMs = Date.now() - this.wallAt - (performance.now() - this.monoAt);
    this.mark();
    if (jumpMs < JUMP_TOLERANCE_MS) return;
    // a copy: a timer run or cancelled meanwhile changes the set
    for (const timer of [...this.timers]) timer.clockMoved(jumpMs);
  };
}

/** The process's watch: every WallClockTimer uses it unless given another. */
export const clockWatch = new ClockWatch();

export interface WallClockTimerOptions {
  /** Default: the process's clockWatch. */
  readonly watch?: ClockWatch;
  /** An unref'd timer does not keep the process alive (default: it does, as setTimeout). */
  readonly unref?: boolean;
  /** The wall clock moved ahead by `jumpMs` more than the process ran; `due`: the instant has passed. */
  readonly onJump?: (jumpMs: number, due: boolean) => void;
}

/** Runs a callback once Date.now() reaches an instant; set() again replaces it. */
export class WallClockTimer {
  private timeout: NodeJS.Timeout | undefined;
  private at = 0;
  private run: () => void = () => undefined;
  private readonly watch: ClockWatch;

  constructor(private readonly options: WallClockTimerOptions = {}) {
    this.watch = options.watch ?? clockWatch;
  }

  /** Set and not fired nor cancelled yet. */
  get pending(): boolean {
    return this.timeout !== undefined;
  }

  /** `run` once the wall clock reaches `atMs` (ms since the epoch); replaces what was set. */
  set(atMs: number, run: () => void): void {
    this.at = atMs;
    this.run = run;
    this.arm();
    this.watch.add(this);
  }

  cancel(): void {
    // a connection's timer runs to its caller's certificate expiry, a duration of its own: its
    // list goes with it (timer-clear.ts)
    clearTimer(this.timeout);
    this.timeout = undefined;
    this.watch.delete(this);
  }

  /** From the watch: the wall clock moved ahead of the running time. */
  clockMoved(jumpMs: number): void {
    if (this.timeout === undefined) return;
    this.options.onJump?.(jumpMs, Date.now() >= this.at);
    // onJump may have set or cancelled it
    if (this.timeout !== undefined) this.arm();
  }

  private arm(): void {
    clearTimer(this.timeout);
    this.timeout = setTimeout(this.fire, Math.min(MAX_TIMER_MS, Math.max(0, this.at - Date.now())));
    if (this.options.unref) this.timeout.unref();
  }

  private readonly fire = (): void => {
    // early: the clock was set back, or a wait longer than one timer holds
    if (Date.now() < this.at) return this.arm();
    this.timeout = undefined;
    this.watch.delete(this);
    this.run();
  };
}

/** The warning a caller logs for a jump of CLOCK_JUMP_MS or more: `what` is due or still ahead. */
export function clockJumpMessage(jumpMs: number, what: string, due: boolean): string {
  return `the wall clock moved ahead by ${Math.round(jumpMs / 1000)} s more than this process ran (a suspend and resume, or the clock set): ${due ? `the ${what} due meanwhile runs now` : `the ${what} is still ahead`}`;
}

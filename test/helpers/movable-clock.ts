// This process's JS clock (Date) moved ahead of the host's, as a VM or laptop suspended and
// resumed (or a clock stepped by NTP) moves it under a running sidecar, while the timers, which
// count the process's running time, do not move. clock-ahead.cjs does the same for a child.

import { clockWatch } from '../../src/wall-clock-timer.js';

export interface MovableClock {
  /** How far ahead of the host's this process's Date runs (ms); set it to move the clock. */
  readonly offset: { ms: number };
  restore(): void;
}

/** This process's Date runs `offset.ms` ahead of the host's from now on, until restored. */
export function movableClock(): MovableClock {
  const RealDate = Date;
  const offset = { ms: 0 };
  class MovedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + offset.ms);
      else super(...(args as [string]));
    }
    static override now(): number {
      return RealDate.now() + offset.ms;
    }
  }
  globalThis.Date = MovedDate as DateConstructor;
  return { offset, restore: () => void (globalThis.Date = RealDate) };
}

/** The process's clock watch looks every `ms` instead of every 30 s, until the returned function is called. */
export function lookOftenAtTheClock(ms: number): () => void {
  const before = clockWatch.checkMs;
  clockWatch.checkMs = ms;
  return () => void (clockWatch.checkMs = before);
}

/** Waits (by the running time, which a moved Date does not move) until `condition` holds, at most `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return condition();
}

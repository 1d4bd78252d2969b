// The two halves of HTTP/2 flow control (RFC 9113 §5.2, §6.9), used for every stream and for
// the connection. ReceiveWindow is what the peer may still send us; its credit is given back
// (WINDOW_UPDATE) only for bytes our consumer has taken, never on arrival: that is the
// backpressure across the hop. SendWindow is what we may still send; a peer that grows it past
// 2^31 − 1 commits a FLOW_CONTROL_ERROR.

import { MAX_WINDOW } from './constants.js';

export class ReceiveWindow {
  /** Bytes the peer may send before it must wait for a WINDOW_UPDATE. */
  available: number;
  /** Bytes consumed (or discarded) whose credit has not been returned yet. */
  private owed = 0;
  /** Credit goes back in batches of a quarter of the window we aim to keep open. */
  private threshold: number;

  constructor(initial: number, target = initial) {
    this.available = initial;
    this.threshold = Math.max(1, target >>> 2);
  }

  /** The peer sent `n` flow-controlled bytes; false if that was more than its window allowed. */
  receive(n: number): boolean {
    if (n > this.available) return false;
    this.available -= n;
    return true;
  }

  /**
   * Our side took `n` bytes: returns the WINDOW_UPDATE increment to send now, or 0 to wait
   * for more (one update per quarter window, not per chunk). `force` sends any owed credit
   * (e.g. when the window would otherwise stall).
   */
  consume(n: number, force = false): number {
    this.owed += n;
    if (this.owed === 0) return 0;
    if (this.owed < this.threshold && !force && this.available >= this.threshold) return 0;
    // what is returned was taken from the window, so it never reopens past its size (nor past 2^31 − 1)
    const increment = Math.min(this.owed, MAX_WINDOW - this.available);
    this.owed -= increment;
    this.available += increment;
    return increment;
  }

  /** Opens the window to `target` now (the connection window at start); returns the increment. */
  growTo(target: number): number {
    this.threshold = Math.max(1, target >>> 2);
    const increment = target - this.available;
    if (increment <= 0) return 0;
    this.available += increment;
    return increment;
  }
}

export class SendWindow {
  constructor(public available: number) {}

  /** A WINDOW_UPDATE: false if it would take the window past 2^31 - 1 (FLOW_CONTROL_ERROR). */
  grow(increment: number): boolean {
    if (this.available + increment > MAX_WINDOW) return false;
    this.available += increment;
    return true;
  }

  /** SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (may go negative, RFC 9113 §6.9.2). */
  adjust(delta: number): boolean {
    if (this.available + delta > MAX_WINDOW) return false;
    this.available += delta;
    return true;
  }
}

// The frame writer's books of DATA payloads it holds by reference (frame-writer.ts): who waits
// for the batch holding each to leave, and where that DATA frame's header is, so END_STREAM can
// still be set on it just before the batch is written. A waiter is told once the socket has
// taken its batch (socket write callbacks come in order, so one count per batch is enough), or
// at once if the batch will never be written. Arrays reused across batches: nothing is made per
// frame or per request (a stream whose chunks are split over frames makes one waiter of its own).

import { Flag } from './constants.js';

/** What waits for the batch holding its DATA to leave (a stream whose write callback waits). */
export interface BatchWaiter {
  /** Just before the batch is written: true to set END_STREAM on the waiter's DATA frame (its writer has ended). Frames nothing. */
  endsWithBatch(): boolean;
  /** The socket has taken the batch (or it will never be written). */
  batchWritten(): void;
}

export class BatchWaiters {
  /** Waiters of the batch being built, and where their DATA frames' headers are. */
  private current: BatchWaiter[] = [];
  private readonly slabs: Buffer[] = [];
  private readonly ats: number[] = [];
  /** Waiters of batches the socket has not finished yet, oldest first, and how many each batch has. */
  private readonly inFlight: BatchWaiter[] = [];
  private readonly counts: number[] = [];
  /** The socket's callback for the oldest batch with waiters. */
  private readonly written = (): void => {
    let n = this.counts.shift() ?? 0;
    while (n-- > 0 && this.inFlight.length > 0) this.inFlight.shift()!.batchWritten();
  };

  /** A DATA frame whose header starts at `slab[at]` waits with the current batch. */
  add(waiter: BatchWaiter, slab: Buffer, at: number): void {
    this.current.push(waiter);
    this.slabs.push(slab);
    this.ats.push(at);
  }

  /**
   * Just before the current batch is written: END_STREAM on the frames of writers that ended
   * since (no frame of its own, a turn later). Returns the socket callback for the batch's last
   * write, or undefined when nothing waits.
   */
  handOff(): (() => void) | undefined {
    const waiters = this.current;
    const n = waiters.length;
    if (n === 0) return undefined;
    for (let i = 0; i < n; i++) {
      if (waiters[i]!.endsWithBatch()) this.slabs[i]![this.ats[i]! + 4]! |= Flag.END_STREAM;
      this.inFlight.push(waiters[i]!);
    }
    waiters.length = this.slabs.length = this.ats.length = 0;
    this.counts.push(n);
    return this.written;
  }

  /** The current batch will never be written: its waiters are told now (nothing holds their buffers any more). */
  release(): void {
    const waiters = this.current;
    if (waiters.length === 0) return;
    this.current = [];
    this.slabs.length = this.ats.length = 0;
    for (let i = 0; i < waiters.length; i++) waiters[i]!.batchWritten();
  }
}

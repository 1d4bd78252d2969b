// The PINGs we sent and are waiting for (RFC 9113 §6.7): each gets a distinct 8-byte payload,
// its ACK is matched by payload and reports the round trip; when the connection ends, every
// waiting callback gets the error. Used for liveness checks and the graceful GOAWAY's round.

import type { FrameWriter } from './frame-writer.js';

interface PendingPing {
  readonly payload: Buffer;
  readonly startedAt: number;
  readonly callback: (err: Error | null, durationMs: number) => void;
}

export class PingTracker {
  private pending: PendingPing[] = [];
  private counter = 0;

  send(writer: FrameWriter, callback: (err: Error | null, durationMs: number) => void): void {
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(process.pid >>> 0, 0);
    payload.writeUInt32BE(++this.counter >>> 0, 4);
    this.pending.push({ payload, startedAt: performance.now(), callback });
    writer.ping(payload, false);
  }

  /** A PING ACK; one we did not send (or answered twice) is ignored. */
  acked(payload: Buffer): void {
    const i = this.pending.findIndex((p) => p.payload.equals(payload));
    if (i < 0) return;
    const [p] = this.pending.splice(i, 1);
    p!.callback(null, performance.now() - p!.startedAt);
  }

  failAll(err: Error): void {
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.callback(err, 0);
  }
}

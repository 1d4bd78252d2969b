// Which stream's DATA goes out next: streams with something to send wait in a round-robin
// list; each turn frames at most one frame per stream, within the stream's window, the
// connection's window and the peer's max frame size, and only while the socket is not
// backed up (DATA waits for 'drain' beyond SOCKET_HIGH_WATER, so a slow peer holds our
// writers through their write() returning false rather than through our memory).

import type { Duplex } from 'node:stream';
import type { SendWindow } from './flow-control.js';
import type { FrameWriter } from './frame-writer.js';
import type { H2Stream } from './stream.js';
import { hasData, hasOutput, sendData } from './stream-send-side.js';

/** DATA is held back (not framed) while this much is waiting to leave the socket. */
export const SOCKET_HIGH_WATER = 1 << 20;

export class SendScheduler {
  private readonly ready: H2Stream[] = [];
  private sending = false;

  constructor(
    private readonly socket: Duplex,
    private readonly writer: FrameWriter,
    private readonly window: SendWindow,
    /** The peer's SETTINGS_MAX_FRAME_SIZE, read at each frame (it may change). */
    private readonly maxFrameSize: () => number,
  ) {}

  private endWithoutWindow(): void {
    const ready = this.ready;
    for (let i = 0; i < ready.length; ) {
      const stream = ready[i]!;
      if (hasOutput(stream) && !hasData(stream) && !stream.protocolClosed) sendData(stream, 0);
      if (!hasOutput(stream) || stream.protocolClosed) {
        ready.splice(i, 1);
        stream.queued = false;
      } else i++;
    }
  }

  /** The stream has a chunk or its end to send. */
  add(stream: H2Stream): void {
    if (!stream.queued) {
      stream.queued = true;
      this.ready.push(stream);
    }
    this.run();
  }

  clear(): void {
    this.ready.length = 0;
  }

  /** Frames DATA from the ready streams while both windows and the socket allow. Re-entrant calls return. */
  run(): void {
    if (this.sending) return;
    this.sending = true;
    try {
      const ready = this.ready;
      while (ready.length > 0) {
        if (this.socket.writableLength + this.writer.pending > SOCKET_HIGH_WATER) return; // 'drain' resumes
        const stream = ready[0]!;
        if (!hasOutput(stream) || stream.protocolClosed) {
          ready.shift();
          stream.queued = false;
          continue;
        }
        const max = Math.min(this.window.available, this.maxFrameSize());
        if (max <= 0 && hasData(stream)) {
          // the connection window is shut (its WINDOW_UPDATE resumes us); streams that only
          // have their END_STREAM left need no window and need not wait behind this one
          this.endWithoutWindow();
          return;
        }
        // sendData() may complete a chunk, whose callback may write the next one: that only
        // queues (we are `sending`), and the stream stays at the end of the list
        const n = sendData(stream, max);
        this.window.available -= n;
        ready.shift();
        if (hasOutput(stream) && !stream.windowBlocked) ready.push(stream);
        else stream.queued = false;
      }
    } finally {
      this.sending = false;
    }
  }
}

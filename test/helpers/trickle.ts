// Test helper: a request body sent slowly, `chunks` writes of 512 bytes `everyMs` apart, then
// ended; `onEnded` runs as the end is handed to the stream (not at 'finish': on a loaded machine
// an answer to the ended body was seen arriving before the client's own 'finish'). For the tests of timers that start at the end of
// a request body (the head-timeout tests of both directions).

import type { Writable } from 'node:stream';

const CHUNK = Buffer.alloc(512, 97);

export function trickle(body: Writable, chunks: number, everyMs: number, onEnded: () => void): void {
  let sent = 0;
  const timer = setInterval(() => {
    // cut by an answer, or ended: nothing more to send
    if (body.destroyed || body.writableEnded) return clearInterval(timer);
    body.write(CHUNK);
    if (++sent === chunks) {
      clearInterval(timer);
      onEnded();
      body.end();
    }
  }, everyMs);
}

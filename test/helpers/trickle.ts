// Test helper: a request body sent slowly, `chunks` writes of 512 bytes `everyMs` apart, then
// ended; `onEnded` runs once the end went out. For the tests of timers that start at the end of
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
      body.end(onEnded);
    }
  }, everyMs);
}

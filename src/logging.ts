// The process logger: pino, JSON lines on stdout. Built once by the command that runs and
// passed down; nothing below imports a global logger.
//
// stdout is written asynchronously through one bounded buffer per process (sonic-boom, as
// pino's own default, but with maxLength): a stdout that is slow or never read (a stalled log
// shipper, a pipe nobody drains) costs at most MAX_BUFFERED_BYTES; a line that does not fit is
// dropped whole and counted (src/log-output.ts → meshcar_log_lines_dropped_total) instead of
// queued without bound. At exit the buffer gets until a deadline to drain (closeLogs), then
// the rest is dropped: a shutdown never waits on a reader that does not read.
//
// Each write carries whole lines and at most PIPE_BUF bytes: other processes write to the same
// stdout (the workers of `workers: N` and their primary; an app started beside the sidecar in
// one container), and a pipe takes a write of up to PIPE_BUF whole or not at all, while a
// larger one (sonic-boom's default, 16 KB) is taken in part when its reader lags, and another
// process's write then lands in the gap: lines spliced into each other, refused by log stores.
// A single line longer than PIPE_BUF is still one write of its own, and may be split so.

import fs from 'node:fs';
import { pino, type Logger } from 'pino';
import { logLineDropped, logLinesDropped, setLogCloser } from './log-output.js';
import { escapeUnsafe } from './log-escape.js';

/** The most log output held in memory while stdout does not keep up. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** The most a pipe takes in one write without splitting it (POSIX's PIPE_BUF on Linux). */
export const PIPE_BUF = 4096;
/** At exit without closeLogs (an error path, process.exit elsewhere): the longest the last lines may take. */
const EXIT_FLUSH_MS = 1000;

interface Output {
  write(line: string): void;
}

let output: Output | undefined;

/** The process's stdout, opened once for every logger of the process. */
function stdoutOutput(): Output {
  if (output) return output;
  // whether sonic-boom's buffer is empty: false from a line taken until its 'drain' (emitted
  // once a write leaves nothing buffered: minLength is 0). One flag instead of counting each
  // line's bytes here: sonic-boom already measures every line against maxLength
  let idle = true;
  let closed = false;
  let gaveUp = false;
  // the latest write failed for good (not EAGAIN, not EPIPE), until one succeeds
  let failing = false;
  // until when a write stdout refuses (EAGAIN) is tried again: for ever while running, up to a
  // deadline once the process is closing
  let retryUntil = Infinity;
  const waiters = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of [...waiters]) wake();
  };
  // registered before pino.destination's own exit hook (a synchronous flush with no bound), so
  // this one runs first: it flushes within EXIT_FLUSH_MS, else drops the rest (destroy, which
  // pino's hook then skips). Closed first, as the closer does: a line logged by a later exit
  // listener is then a counted drop, not a "SonicBoom destroyed" thrown out of that listener
  process.on('exit', () => {
    if (closed || idle) return;
    retryUntil = Date.now() + EXIT_FLUSH_MS;
    // a write that fails for good (a full disk under stdout; known already, or its error still
    // on its way, as a crash right after a line meets it) is dropped: sonic-boom's flushSync
    // tries it again for ever (it gives up on EAGAIN only), and the exit never came. It writes
    // through fs.writeSync, which is this for the flush's length
    const writeSync = fs.writeSync;
    fs.writeSync = ((fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
      try {
        return (writeSync as (...args: unknown[]) => number)(fd, data, ...rest);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') throw err; // tried again until EXIT_FLUSH_MS
        return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
      }
    }) as typeof fs.writeSync;
    try {
      dest.flushSync();
    } catch {
      closed = true;
      dest.destroy();
    } finally {
      fs.writeSync = writeSync;
    }
  });
  const dest = pino.destination({
    // process.stdout, not the bare fd 1: opening it makes a pipe's fd non-blocking (libuv's
    // uv_pipe_open), so a full pipe answers EAGAIN (retried from a timer) instead of blocking a
    // libuv thread for ever in write(2), which process.exit then waits for
    dest: process.stdout.fd,
    sync: false,
    maxLength: MAX_BUFFERED_BYTES,
    // whole lines, at most PIPE_BUF per write: see the header
    maxWrite: PIPE_BUF,
    retryEAGAIN: () => Date.now() < retryUntil,
  });
  // a line that does not fit is dropped by sonic-boom before it is buffered
  dest.on('drop', () => logLineDropped());
  dest.on('drain', () => {
    idle = true;
    wakeAll();
  });
  // a write that failed for good never ends the process; stdout closed by its reader (EPIPE:
  // pino.destination stops writing) drops every line from then on, and holds no exit back
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') {
      // any other failure (ENOSPC on a full disk, EIO): sonic-boom stops and tries again only
      // when another line comes, so a closer waiting for the buffer to drain would wait out its
      // whole deadline (drainTimeout, on every SIGTERM): it gives up at once instead
      failing = true;
      wakeAll();
      return;
    }
    closed = true;
    wakeAll();
  });
  dest.on('write', () => {
    failing = false;
  });
  setLogCloser(async (deadline) => {
    if (gaveUp) return false;
    if (!closed && !idle) {
      if (!failing) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
          waiters.add(done);
        });
      }
      if (!closed && !idle) {
        // given up: what is buffered is dropped, and so is every later line (the process is ending)
        closed = true;
        gaveUp = true;
        retryUntil = 0;
        dest.destroy();
        return false;
      }
    }
    return true;
  });
  output = {
    write(line: string) {
      // a destroyed sonic-boom throws on write: every destroy above sets closed first, so a
      // line after it is a counted drop, never a throw into the code that logged it
      if (closed) {
        logLineDropped();
        return;
      }
      // sonic-boom writes asynchronously: its 'drain' for this line comes later, never from
      // inside write. A line it drops leaves the buffer as it was (emptiness included), so
      // only a line into an empty buffer needs to know whether it was taken
      if (!idle) {
        dest.write(line);
        return;
      }
      idle = false;
      const before = logLinesDropped();
      dest.write(line);
      if (logLinesDropped() !== before) idle = true;
    },
  };
  return output;
}

export function createLogger(level: string, name = 'meshcar'): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // secrets never belong in a log line, even by accident through an error object
      redact: { paths: ['token', '*.token', 'privateKey', '*.privateKey', 'key', 'authorization', '*.authorization'], censor: '[redacted]' },
      // C1 controls and bidi overrides a peer put in a path or a certificate: escaped (log-escape.ts)
      hooks: { streamWrite: escapeUnsafe },
    },
    stdoutOutput(),
  );
}

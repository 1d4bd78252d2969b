// Reading a file a user names (the config, an OpenAPI spec, identity PEM files, a join token)
// without letting the path cost unbounded time or memory. stat() gives a FIFO or a device
// size 0, so a size check before readFile() let `/dev/urandom` grow to 1 GB and a FIFO without
// a writer block the read, and with it every later reload (they queue) and the process's exit,
// for good. Here the file is opened without blocking; a regular file is read up to its cap; a
// pipe (`meshcar check --config <(envsubst < sidecar.yaml.in)`, or a FIFO) is read without
// blocking, up to the cap and for at most PIPE_DEADLINE_MS; a device, socket or folder is
// refused. Shared by the config, schema and identity layers, which must not depend on each other.

import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

/** How long a pipe may take to deliver its whole content. */
export const PIPE_DEADLINE_MS = 10_000;

/** Why a file was not read: `too_large` (over the cap), `not_a_file` (a directory, device or socket), `too_slow` (a pipe past the deadline). */
export class BoundedReadError extends Error {
  constructor(
    message: string,
    readonly code: 'too_large' | 'not_a_file' | 'too_slow',
  ) {
    super(message);
    this.name = 'BoundedReadError';
  }
}

/**
 * The file's bytes, at most `maxBytes`; a BoundedReadError when it is not a regular file or
 * holds more (checked before reading, and while reading: a file that grows is still stopped).
 * Other failures (ENOENT, EACCES) are thrown as the fs module throws them. `inspect` sees the
 * opened file's own stats before anything is read and may throw: a check of who wrote the file
 * that a path swapped between a stat() and the open cannot pass (disk-store.ts). `openFlags` are
 * added to the open's (O_NOFOLLOW: a file that must not be a link).
 */
export async function readBoundedFile(file: string, maxBytes: number, pipeDeadlineMs = PIPE_DEADLINE_MS, inspect?: (stats: Stats) => void, openFlags = 0): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | openFlags);
  try {
    const stats = await handle.stat();
    inspect?.(stats);
    if (stats.isFIFO()) return await readPipe(handle, maxBytes, pipeDeadlineMs);
    if (!stats.isFile()) throw new BoundedReadError(`is ${stats.isDirectory() ? 'a directory' : 'not a regular file or a pipe (a device or a socket)'}`, 'not_a_file');
    const size = stats.size;
    if (size > maxBytes) throw new BoundedReadError(`is ${size} bytes; at most ${maxBytes} are read`, 'too_large');
    // one buffer, the file's size (+1, to see it grow), growing by doubling if it does
    let buffer = Buffer.allocUnsafe(Math.min(size + 1, maxBytes + 1));
    let total = 0;
    for (;;) {
      if (total === buffer.length) {
        const bigger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(bigger, 0, 0, total);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null);
      if (bytesRead === 0) return buffer.subarray(0, total);
      total += bytesRead;
      if (total > maxBytes) throw new BoundedReadError(`holds more than ${maxBytes} bytes; at most ${maxBytes} are read`, 'too_large');
    }
  } finally {
    await handle.close();
  }
}

/**
 * A pipe opened without blocking: read as its writer writes (EAGAIN: nothing yet), up to the
 * cap, until its end, for at most the deadline. A pipe with no writer yet is waited for, as a
 * blocking open waits, but only until the deadline.
 */
async function readPipe(handle: FileHandle, maxBytes: number, deadlineMs: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const deadline = performance.now() + deadlineMs;
  const chunk = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, maxBytes + 1 - total), null));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      if (performance.now() > deadline) throw new BoundedReadError(`is a pipe that did not end within ${deadlineMs} ms`, 'too_slow');
      await new Promise((resolve) => setTimeout(resolve, PIPE_POLL_MS));
      continue;
    }
    // the end, once something came; nothing yet may also be a writer not there yet (as a
    // blocking open would wait for one): asked again until the deadline
    if (bytesRead === 0 && total > 0) return Buffer.concat(chunks, total);
    if (bytesRead === 0) {
      if (performance.now() > deadline) throw new BoundedReadError(`is a pipe that sent nothing within ${deadlineMs} ms`, 'too_slow');
      await new Promise((resolve) => setTimeout(resolve, PIPE_POLL_MS));
      continue;
    }
    chunks.push(Buffer.from(chunk.subarray(0, bytesRead)));
    total += bytesRead;
    if (total > maxBytes) throw new BoundedReadError(`holds more than ${maxBytes} bytes; at most ${maxBytes} are read`, 'too_large');
  }
}

/** How often a pipe with nothing to read yet is asked again. */
const PIPE_POLL_MS = 5;

/** The file as UTF-8 text, bounded (and inspected) as readBoundedFile reads it. */
export async function readBoundedText(file: string, maxBytes: number, inspect?: (stats: Stats) => void, openFlags = 0): Promise<string> {
  return (await readBoundedFile(file, maxBytes, PIPE_DEADLINE_MS, inspect, openFlags)).toString('utf8');
}

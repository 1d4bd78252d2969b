// Reading a file a user names (the config, an OpenAPI spec, identity PEM files, a join token)
// without letting the path cost unbounded time or memory. stat() gives a FIFO or a device
// size 0, so a size check before readFile() let `/dev/urandom` grow to 1 GB and a FIFO block
// the read, and with it every later reload (they queue) and the process's exit, for good. Here
// the file is opened without blocking, must be a regular file, and is read up to its cap.
// Shared by the config, schema and identity layers, which must not depend on each other.

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Why a file was not read: `too_large` (over the cap) or `not_a_file` (a directory, FIFO, device or socket). */
export class BoundedReadError extends Error {
  constructor(
    message: string,
    readonly code: 'too_large' | 'not_a_file',
  ) {
    super(message);
    this.name = 'BoundedReadError';
  }
}

/**
 * The file's bytes, at most `maxBytes`; a BoundedReadError when it is not a regular file or
 * holds more (checked before reading, and while reading: a file that grows is still stopped).
 * Other failures (ENOENT, EACCES) are thrown as the fs module throws them.
 */
export async function readBoundedFile(file: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new BoundedReadError(`is ${stats.isDirectory() ? 'a directory' : 'not a regular file (a FIFO, a device or a socket)'}`, 'not_a_file');
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

/** The file as UTF-8 text, bounded as readBoundedFile reads it. */
export async function readBoundedText(file: string, maxBytes: number): Promise<string> {
  return (await readBoundedFile(file, maxBytes)).toString('utf8');
}

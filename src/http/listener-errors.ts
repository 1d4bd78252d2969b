// What a listening server does with an 'error' once it is bound. Without a listener an error
// there (an accept error libuv does not absorb: it rides out EMFILE and ENFILE itself, not,
// say, ENOBUFS or ENOMEM) is an uncaught exception that ends the process; it is logged
// instead, at most once per error code per 10 s (a failing accept repeats with every
// connection attempt), with the count of those left out.

import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LogPerKey, leftOut } from '../log-per-key.js';

/** Logs `server`'s errors from now on, rate-limited per code; `what` names the listener ("admin", "outbound"). */
export function logListenerErrors(server: EventEmitter, logger: Logger, what: string): void {
  const perCode = new LogPerKey();
  server.on('error', (err: Error) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const through = perCode.take(code);
    if (through) logger.error({ err: err.message, code }, `${what} listener error${leftOut(through, `${code} errors`)}`);
  });
}

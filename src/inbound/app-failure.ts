// A request to the app failed before its answer: the exchange is answered with the sidecar's
// error for it (app-errors.ts), and a failure that was this sidecar's own shortage (no file
// descriptor, local port or socket buffer left to reach the app with) is also said in a warn line, at most
// one per cause per window: the answer goes to the remote caller, and without the line the
// operator saw a stream of errors that read as the app's.

import { LogPerKey, leftOut } from '../log-per-key.js';
import { classifyAppError } from './app-errors.js';
import type { Exchange } from './exchange.js';

const SHORTAGE_LOG = new LogPerKey();

/** `appAddress`: the app as callers may be told it (appAddressForCallers); `suffix` is added to the answer's message. */
export function failOnApp(exchange: Exchange, err: unknown, appAddress: string | undefined, suffix = ''): void {
  const failure = classifyAppError(err, appAddress);
  if (failure.local !== undefined) {
    const through = SHORTAGE_LOG.take(failure.local);
    if (through) exchange.context.logger.warn({ err: failure.message }, `cannot connect to the app: a shortage of this sidecar's, not the app's fault${leftOut(through, 'like it')}`);
  }
  exchange.fail(failure.code, failure.message + suffix);
}

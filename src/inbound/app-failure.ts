// A request to the app failed before its answer: the exchange is answered with the sidecar's
// error for it (app-errors.ts), and a failure that was this sidecar's own shortage (no file
// descriptor, local port or socket buffer left to reach the app with) is also said in a warn line, at most
// one per cause per window: the answer goes to the remote caller, and without the line the
// operator saw a stream of errors that read as the app's. And the rule every app client applies
// to a connection or session that broke before any answer: which requests may be sent once more.

import { isRepeatableRequest } from '../http/idempotency.js';
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

/**
 * The connection (or h2c session) to the app broke under the request before any answer: the
 * break may have come after the app read it, so only a request safe to repeat, with no body to
 * replay, is sent once more, and only once.
 */
export function mayResendAfterBreak(exchange: Exchange): boolean {
  return !exchange.requestHasBody && exchange.attempts < 2 && isRepeatableRequest(exchange.method, exchange.requestHeaders);
}

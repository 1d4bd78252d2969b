// The warn line of an answer the inbound's own idle deadline cut after its head went out (an
// SSE stream or a watch quiet for longer than its idleTimeout). The caller can only be reset
// then, and its sidecar counts that as upstream_reset, the same as an app that crashed
// mid-answer: this line (and the reason upstream_timeout the exchange is recorded with, see
// exchange.ts fail()) is what tells the two apart, naming the key to raise. At most one line
// per config key per 10 s, per inbound (its streamCuts, src/log-per-key.ts): a route's streams
// tend to go quiet together, and the lines left out are counted in the next one.

import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import { leftOut, leftOutFields, type LogPerKey } from '../log-per-key.js';
import type { Exchange } from './exchange.js';
import { loggedPath } from '../metrics/access-log.js';

/** The codes of the inbound's own deadlines (exchange-deadlines.ts): a cut they make is theirs, not a reset by someone else. */
export function isOwnDeadline(code: ErrorCode): boolean {
  return code === 'upstream_timeout' || code === 'request_timeout';
}

/** One warn line per idle-timeout key per 10 s: what was cut, after how long, and which key to raise. */
export function warnStreamCut(lines: LogPerKey, logger: Logger, exchange: Exchange, message: string): void {
  const key = exchange.idleTimeoutKey;
  const through = lines.take(key);
  if (!through) return;
  // the default key may be overridden per path: say so, or the operator raises the wrong one
  const which = key === 'inbound.idleTimeout' ? "inbound.idleTimeout, or the path's idleTimeout in inbound.routes" : key;
  logger.warn(
    { peer: exchange.caller.id.uri, path: loggedPath(exchange.path), status: exchange.status, requestId: exchange.requestId, idleTimeoutMs: exchange.idleTimeoutMs, ...leftOutFields(through) },
    `stream cut after its response head: ${message} (${which}); the caller sees a reset (its sidecar counts upstream_reset): raise that key for streams that stay quiet longer, or have the app send something sooner${leftOut(through, 'on this key')}`,
  );
}

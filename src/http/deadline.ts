// The deadline a caller puts on its own request: `grpc-timeout` (gRPC's units H M S m u n) or
// `x-request-timeout` (a duration such as `250ms`, `2s`, or plain seconds). Shared by the
// outbound retry policy and the inbound route timeouts.

import { parseDuration } from '../config/duration.js';

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * The deadline the app gave this request, in ms: `grpc-timeout` or `x-request-timeout`. The
 * shorter wins; undefined when there is none (or it cannot be read: then the configured
 * timeout applies).
 */
export function appDeadlineMs(grpcTimeout: unknown, requestTimeout: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof grpcTimeout === 'string') {
    const m = GRPC_TIMEOUT.exec(grpcTimeout);
    // gRPC's wire format takes positive values only: a 0 is read as none (it was a 1 ms timer
    // racing the upstream's answer); the header goes on as sent, for the app to judge
    const value = m ? Number(m[1]) : 0;
    if (value > 0) ms = Math.max(1, Math.ceil(value * (GRPC_UNIT_MS[(m as RegExpExecArray)[2] as string] as number)));
  }
  if (typeof requestTimeout === 'string') {
    const text = requestTimeout.trim();
    const parsed = SECONDS.test(text) ? Number(text) * 1000 : parseDuration(text);
    if (parsed !== undefined && parsed > 0 && (ms === undefined || parsed < ms)) ms = Math.max(1, Math.ceil(parsed));
  }
  return ms;
}
